"""The EventBridge events the launcher Lambdas receive, as AWS sends them (trimmed to the fields we read + a few)."""

from __future__ import annotations

from typing import Any

from app.launcher.registrar import DETAIL_TYPE
from tests.app.launcher.stage_settings import ACCOUNT, DATASETS, REGION


def s3_event(
    key: str,
    bucket: str = DATASETS,
    etag: str = "b1946ac92492d2347c6235b4d2611184",
    version_id: str | None = None,
) -> dict[str, Any]:
    """An S3 'Object Created' event (the runner's dataset trigger)."""
    obj: dict[str, Any] = {"key": key, "size": 1234, "etag": etag}
    if version_id is not None:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "reason": "PutObject",
        },
    }


def state_change(name: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """A 'SageMaker Training Job State Change' event (what the registrar reacts to)."""
    detail: dict[str, Any] = {"TrainingJobName": name, "TrainingJobStatus": status}
    if reason:
        detail["FailureReason"] = reason
    return {"source": "aws.sagemaker", "detail-type": DETAIL_TYPE, "detail": detail}
