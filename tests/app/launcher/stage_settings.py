"""One stage as the launcher tests see it: the names and ARNs CDK would give it, and the runner's Lambda environment
(``RUNNER_ENV``, the variables of app/contracts/launcher_environment.py as CDK writes them)."""

from __future__ import annotations

REGION = "us-east-1"
ACCOUNT = "123456789012"
DATASETS = "stage-datasets-bucket"
ARTIFACTS = "stage-artifacts-bucket"
KMS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/train@sha256:{'a' * 64}"
SERVE_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/serve@sha256:{'b' * 64}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Dev-Training-TrainingRole"
PREFIX = "yolo-dev-"
DATASET_URI = f"s3://{DATASETS}/datasets/v-3f2a1b9c/"
GROUP = "dev-yolo-detector"
# The champion comparison's settings, as infra/config.py TrainingSettings defaults them (both launchers read them).
CHAMPION_ENV: dict[str, str] = {
    "MODEL_PACKAGE_GROUP_NAME": GROUP,
    "CHAMPION_MAP_DROP_TOLERANCE": "0.01",
    "CHAMPION_CLASS_DROP_TOLERANCE": "0.05",
    "CHAMPION_MIN_CLASS_INSTANCES": "20",
    "CHAMPION_CONFIDENCE": "0.95",
}

RUNNER_ENV: dict[str, str] = {
    "STAGE": "Dev",
    "JOB_NAME_PREFIX": PREFIX,
    "TRAINING_IMAGE_URI": IMAGE,
    "TRAINING_ROLE_ARN": ROLE_ARN,
    "INSTANCE_TYPE": "ml.g5.xlarge",
    "INSTANCE_COUNT": "1",
    "VOLUME_SIZE_GB": "50",
    "MAX_RUNTIME_SECONDS": "14400",
    "USE_SPOT": "true",
    "MAX_WAIT_SECONDS": "28800",
    "NETWORK_ISOLATION": "true",
    "KMS_KEY_ARN": KMS_ARN,
    "DATASETS_BUCKET": DATASETS,
    "OUTPUT_S3_URI": f"s3://{ARTIFACTS}/training-output/",
    "CHECKPOINT_S3_URI": f"s3://{ARTIFACTS}/checkpoints/",
    "DEFAULT_HYPERPARAMETERS": '{"epochs": "50", "imgsz": "640"}',
    "INT8_MAP_DROP_CAP": "0.01",
    "INT8_CLASS_DROP_CAP": "0.05",
    "TAGS": '{"project": "yolo-detector", "stage": "dev"}',
    **CHAMPION_ENV,
}
