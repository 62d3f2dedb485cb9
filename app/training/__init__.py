"""SageMaker training container entrypoint around ultralytics YOLO (``python -m app.training``, image cmd ``train``).

Modules: ``sagemaker`` (the /opt/ml contract), ``offline`` (no network at run time), ``failure`` (failure file),
``dataset_check`` (fail fast on a bad dataset), ``weights`` (pretrained channel, baked weights, transfer report),
``callbacks`` (metric line, overfitting guard, spot checkpoints, SIGTERM), ``artifact`` (model.onnx/.pt/.json, plots),
``run`` (the orchestration).
"""
