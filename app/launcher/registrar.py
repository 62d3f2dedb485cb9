"""Registrar Lambda: "SageMaker Training Job State Change" events of this stage's jobs.

Completed -> a new model package version in the stage's model package group, with the job's final metrics;
``Approved`` only when the quality metric (``QUALITY_METRIC`` of app/contracts/metrics.py, ``val:mAP50-95``) meets
the stage's quality bar - and ``int8:mAP50-95`` too when the model ships int8 - AND the champion comparison in its
model.json allows it (app/launcher/evidence.py: compared and not worse under the stage's tolerances, or the stage's
first model), else ``PendingManualApproval`` (and the notify topic says a version waits for review, and why).
Failed or Stopped -> the notify topic, with the failure reason.
Unexpected AWS errors are raised, so Lambda retries the event and then sends it to the on-failure destination.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from app.contracts.channels import DATASET_CHANNEL
from app.contracts.invocation import JSON_TYPE, RAW_IMAGE_TYPES
from app.contracts.metrics import INT8_FIELDS, QUALITY_METRIC
from app.contracts.storage import EVALUATION_DIR
from app.launcher import aws, evidence
from app.launcher.settings import RegistrarSettings

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

DETAIL_TYPE = "SageMaker Training Job State Change"
NOTIFY_STATUSES = ("Failed", "Stopped")
INT8_SHIPPED = dict(INT8_FIELDS)["int8_shipped"]
INT8_QUALITY_METRIC = dict(INT8_FIELDS)["int8_mAP50-95"]
_TOKEN_NAMESPACE = uuid.UUID("6f1c2a0e-8a53-4a55-9a0c-3d2b7c1f6e10")


def final_metrics(description: Mapping[str, Any]) -> dict[str, float]:
    """``FinalMetricDataList`` of DescribeTrainingJob as ``{metric name: value}``."""
    return {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList", []) or []}


def approval(metrics: Mapping[str, float], quality_bar: float) -> tuple[str, str]:
    """(ModelApprovalStatus, why) for a version with ``metrics``.

    A stage serves fp32, or int8 when the model ships it: when the job's int8 line says int8 shipped
    (``int8:shipped`` = 1), its int8 metric must meet the bar too, so an approved version meets it at whichever
    precision a stage serves."""
    score = metrics.get(QUALITY_METRIC)
    if score is None:
        return (
            "PendingManualApproval",
            f"{QUALITY_METRIC} missing from the job's final metrics: review by hand",
        )
    if score < quality_bar:
        return (
            "PendingManualApproval",
            f"{QUALITY_METRIC} {score:.4f} < quality bar {quality_bar:.4f}: review by hand",
        )
    why = f"{QUALITY_METRIC} {score:.4f} >= quality bar {quality_bar:.4f}"
    if metrics.get(INT8_SHIPPED) == 1:
        int8 = metrics.get(INT8_QUALITY_METRIC)
        if int8 is None or not int8 >= quality_bar:  # nan included
            return (
                "PendingManualApproval",
                f"{why}, but int8 ships with {INT8_QUALITY_METRIC} {int8} < quality bar {quality_bar:.4f}: "
                "review by hand (a stage serving int8 would serve it)",
            )
        why += f"; int8 {INT8_QUALITY_METRIC} {int8:.4f} too"
    return "Approved", why


def _dataset_uri(description: Mapping[str, Any]) -> str:
    for channel in description.get("InputDataConfig", []) or []:
        if channel.get("ChannelName") == DATASET_CHANNEL:
            return str(channel["DataSource"]["S3DataSource"]["S3Uri"])
    return "unknown"


def _latest_approved(sagemaker: Any, group: str) -> str | None:
    found = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    return str(found[0]["ModelPackageArn"]) if found else None


def _evaluation_prefix(description: Mapping[str, Any]) -> str:
    """``<S3OutputPath><job>/evaluation/``: next to the job's output/model.tar.gz."""
    output = str(description["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
    return f"{output}/{description['TrainingJobName']}/{EVALUATION_DIR}"


def register(
    description: Mapping[str, Any], *, settings: RegistrarSettings, sagemaker: Any, s3: Any
) -> dict[str, Any]:
    """Create the model package version of a completed job; returns its ARN, status, reason and metrics."""
    metrics = final_metrics(description)
    status, why = approval(metrics, settings.quality_bar_map50_95)
    name = description["TrainingJobName"]
    model_data = description["ModelArtifacts"]["S3ModelArtifacts"]
    found = evidence.read(s3, model_data)
    comparison = found.comparison
    approved_now = (
        _latest_approved(sagemaker, settings.model_package_group_name)
        if comparison is not None and comparison.status == "no_champion"
        else None
    )
    allowed, because = evidence.judge(found, settings.tolerances(), approved_now)
    if not allowed:
        status = "PendingManualApproval"
    why = f"{why}; {because}"
    extra: dict[str, Any] = {}
    attached: dict[str, str] = {}
    if comparison is not None:
        extra["ModelMetrics"], attached = evidence.publish(s3, found, _evaluation_prefix(description))
    properties = {
        "training_job": name,
        "dataset_uri": _dataset_uri(description)[:256],
        **attached,  # before the metrics: CustomerMetadataProperties holds at most 50 entries
        **{f"metric:{k}"[:128]: f"{v:.6g}" for k, v in sorted(metrics.items())},
    }
    created = sagemaker.create_model_package(
        ModelPackageGroupName=settings.model_package_group_name,
        # 1024 characters at most, one line (CreateModelPackage ModelPackageDescription,
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html)
        ModelPackageDescription=" ".join(f"{name}: {why}".split())[:1024],
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": settings.serve_image_uri,
                    "ModelDataUrl": model_data,
                }
            ],
            "SupportedContentTypes": [*RAW_IMAGE_TYPES, JSON_TYPE],
            "SupportedResponseMIMETypes": [JSON_TYPE],
        },
        CustomerMetadataProperties=dict(list(properties.items())[:50]),
        # EventBridge may deliver an event twice: the same job always sends the same token, so one version.
        ClientToken=str(uuid.uuid5(_TOKEN_NAMESPACE, description["TrainingJobArn"])),
        **extra,
    )
    arn = created["ModelPackageArn"]
    log.info("model version registered", extra={"job_name": name, "arn": arn, "approval": status})
    return {
        "status": "registered",
        "model_package_arn": arn,
        "approval": status,
        "reason": why,
        "metrics": metrics,
        **({"comparison_report": attached["comparison:report"]} if attached else {}),
    }


def _notify(settings: RegistrarSettings, sns: Any, subject: str, body: Mapping[str, Any]) -> None:
    if settings.notify_topic_arn:
        sns.publish(
            TopicArn=settings.notify_topic_arn, Subject=subject[:100], Message=json.dumps(body, indent=2)
        )


def on_state_change(
    event: Mapping[str, Any], *, settings: RegistrarSettings, sagemaker: Any, sns: Any, s3: Any
) -> dict[str, Any]:
    detail = event.get("detail") or {}
    name = str(detail.get("TrainingJobName", ""))
    status = str(detail.get("TrainingJobStatus", ""))
    if event.get("detail-type") != DETAIL_TYPE or not name.startswith(settings.job_name_prefix):
        log.warning("ignored event", extra={"detail_type": event.get("detail-type"), "job_name": name})
        return {"status": "ignored", "job_name": name}
    region = sagemaker.meta.region_name
    if status == "Completed":
        # The event can be partial; DescribeTrainingJob has the final metrics and the artifact location.
        description = sagemaker.describe_training_job(TrainingJobName=name)
        result = register(description, settings=settings, sagemaker=sagemaker, s3=s3)
        if result["approval"] != "Approved":
            _notify(
                settings,
                sns,
                f"[{settings.stage}] model version waits for review: {name}",
                {**result, "console_url": aws.console_url(region, name)},
            )
        return {"job_name": name, **result}
    if status in NOTIFY_STATUSES:
        reason = detail.get("FailureReason") or "no failure reason given"
        body = {
            "job_name": name,
            "job_status": status,
            "failure_reason": reason,
            "console_url": aws.console_url(region, name),
        }
        _notify(settings, sns, f"[{settings.stage}] training job {status}: {name}", body)
        log.error("training job did not complete", extra=body)
        return {"status": "notified", **body}
    return {"status": "ignored", "job_name": name, "job_status": status}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point (app.launcher.registrar.handler)."""
    settings, sagemaker, sns = aws.cold_start(RegistrarSettings)
    return on_state_change(event, settings=settings, sagemaker=sagemaker, sns=sns, s3=aws.client("s3"))
