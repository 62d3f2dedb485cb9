"""SageMaker training container entrypoint around ultralytics YOLO (``python -m app.training``, image cmd ``train``).

Modules: ``__main__`` (the command line), ``environment`` (the process environment, read once), ``sagemaker`` (the
/opt/ml contract), ``offline`` (no network at run time), ``device`` (a GPU instance trains on its GPU),
``failure`` (failure file), ``dataset_check`` (fail fast on a bad dataset), ``weights`` (pretrained channel, baked
weights, transfer report), ``callbacks`` (metric line, overfitting guard, spot checkpoints, SIGTERM), ``artifact``
(model.onnx/.pt/.json, plots), ``quantize`` (the int8 model and its gate), ``run`` (the orchestration).
"""
