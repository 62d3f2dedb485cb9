"""Key prefixes of the datasets and artifacts buckets, shared by infra (lifecycle rules, grants) and the
launcher/training code.

The datasets bucket holds raw Ground Truth manifests and images under ``raw/`` (dataprep reads them) and dataprep
outputs under any other prefix (a new ``<prefix>/dataset.json``, ``app.contracts.dataset.DATASET_JSON``, starts a
training run); the artifacts bucket is split by prefix so lifecycle rules and IAM grants can differ per kind of
object.
"""

from __future__ import annotations

MODELS_PREFIX = "models/"  # model.tar.gz of registered model versions (serving reads these)
CHECKPOINTS_PREFIX = "checkpoints/"  # spot-training checkpoints (only needed while a job runs or resumes)
DATA_CAPTURE_PREFIX = "data-capture/"  # endpoint request/response capture
# SageMaker OutputDataConfig (model.tar.gz + output.tar.gz per job)
TRAINING_OUTPUT_PREFIX = "training-output/"
RAW_PREFIX = "raw/"  # datasets bucket: raw manifests and images that dataprep reads (never a dataset itself)
# Artifacts-bucket prefixes the training role can read (infra/constructs/training_role.py grants exactly these): a
# pretrained checkpoint anywhere else is refused by the launcher before any AWS call.
TRAINING_READABLE_PREFIXES: tuple[str, ...] = (MODELS_PREFIX, TRAINING_OUTPUT_PREFIX, CHECKPOINTS_PREFIX)
