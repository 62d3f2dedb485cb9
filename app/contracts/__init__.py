"""The shapes shared by several parts of the platform: one definition each, imported by both sides.

- ``dataset``: the dataprep output that training consumes (folder layout, ``data.yaml``, ``dataset.json``).
- ``artifact``: the model artifact that training writes and serving loads (``model.onnx`` + ``model.json`` ...).
- ``metrics``: the per-epoch log line the training container prints and the SageMaker ``MetricDefinitions``.
- ``hyperparameters``: the typed training hyperparameters (SageMaker passes them as strings).
- ``invocation``: the ``/invocations`` request options, response and error shapes.

This package must stay light: standard library and pydantic only (the Lambda imports it).
"""
