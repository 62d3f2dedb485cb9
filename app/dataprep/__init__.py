"""Data prep: a SageMaker Ground Truth bounding-box ``output.manifest`` -> a balanced, leakage-free YOLO dataset.

Pipeline (each step its own module): ``manifest`` (parse + validate into pandas frames) -> ``split`` (stratified,
grouped, deterministic) -> ``balance`` (caps / oversampling / class weights) -> ``plan`` (the whole, deterministic
plan; identical on every shard) -> ``writer`` (copy images, write labels, ``data.yaml``, ``dataset.json``, QA).
Entry points: ``python -m app.dataprep`` (``cli``) and the SageMaker Processing job (``processing``).
"""
