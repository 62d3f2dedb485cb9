"""Launcher test fixtures: stage settings like CDK writes them, and moto (in-process) AWS with call recording."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from app.launcher.settings import RegistrarSettings, RunnerSettings

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
    "TAGS": '{"project": "yolo-detector", "stage": "dev"}',
}


class CallRecorder:
    """Records the parameters of every API call a boto3 client makes (what we sent, not what moto keeps)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def runner_settings(monkeypatch: pytest.MonkeyPatch) -> RunnerSettings:
    for key, value in RUNNER_ENV.items():
        monkeypatch.setenv(key, value)
    return RunnerSettings()


@pytest.fixture
def registrar_settings() -> RegistrarSettings:
    return RegistrarSettings(
        stage="Dev",
        job_name_prefix=PREFIX,
        notify_topic_arn=None,
        model_package_group_name="dev-yolo-detector",
        quality_bar_map50_95=0.5,
        serve_image_uri=SERVE_IMAGE,
    )


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def sagemaker(aws: None) -> Any:
    return boto3.client("sagemaker", region_name=REGION)
