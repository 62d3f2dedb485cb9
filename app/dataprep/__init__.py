"""Data prep: a SageMaker Ground Truth bounding-box ``output.manifest`` -> a balanced, leakage-free YOLO dataset.

Pipeline (each step its own module): ``manifest`` (+ ``manifest_scan``: parallel chunked parse and validation into
pandas frames) -> ``split`` (stratified, grouped, deterministic) -> ``balance`` (caps / oversampling / class
weights) -> ``plan`` (the whole deterministic plan, identical on every shard) -> ``writer`` (copy images via
``storage``, write labels, ``data.yaml``, ``dataset.json``, ``qa``; ``shards`` commits a dataset several hosts wrote).
``yolo`` holds the label geometry and file names; ``out_check`` refuses an ``--out`` holding another dataset;
``verify`` optionally checks real image sizes; ``synthetic`` makes a small labelled set for demos and tests.
Entry points: ``python -m app.dataprep`` (``cli``) and the SageMaker Processing job (``processing``).
"""
