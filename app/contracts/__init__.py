"""What crosses a seam between separately built and deployed parts: one definition each, imported by both sides.

Between runtime parts (containers and Lambdas built apart and deployed apart):
- ``dataset``: the data prep output that training consumes (folder layout, ``data.yaml``, ``dataset.json``).
- ``artifact``: the model artifact that training writes and serving loads (``model.onnx``, ``model.json`` ...).
- ``comparison``: ``model.json["comparison"]``, the champion comparison training writes and the registrar reads.
- ``channels``: the training job's channels, named by the runner Lambda and read by the training container.
- ``hyperparameters``: the typed training hyperparameters the runner sends and the container parses.
- ``metrics``: the metric lines the training container prints and the ``MetricDefinitions`` that read them.
- ``invocation``: the ``/invocations`` request options, response and error shapes (server and clients).

Between infra (what the CDK synthesizes) and runtime code (what runs in it):
- ``launcher_environment`` and ``serving_environment``: the environment variables infra sets and the code reads.
- ``storage``: the bucket key prefixes behind the grants and lifecycle rules, and the code writing under them.
- ``instance_types``, ``cuda``: instance families, GPUs and the CUDA each image is built on (endpoint and job checks).
- ``errors``: ``ContractError``, the base of every contract violation (names file, field and what was expected).

Not here: what only infra and the operator scripts share (release records: infra/release_record.py; stack output
keys: infra/stack_outputs.py; pinned image URIs: infra/image_uri.py). A test keeps it so: every module here is
imported by runtime code (tests/test_architecture.py). This package must stay light: standard library and pydantic only (the Lambda
imports it).
"""
