"""Runner Lambda: an operator request or a dataset.json "Object Created" event -> exactly one training job.

Response: ``{"status": "started" | "already_started" | "rejected", "job_name", "job_arn", "console_url",
"retryable": false, "error": {"code", "field", "message"}}``. Bad requests and missing GPU quota are answered
``rejected`` (retrying cannot help; the message says what to do) and, for dataset events, sent to the notify topic
because nobody is waiting for the answer. Throttling is retried by botocore, then raised as ``RetryableError`` so
Lambda's async retry and on-failure destination take over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from app.launcher import aws, champion
from app.launcher.settings import RunnerSettings
from app.launcher.training_job import create_training_job_params, resolve
from app.launcher.trigger import S3_SOURCE, RequestError, Trigger, parse_event

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)


class RetryableError(RuntimeError):
    """SageMaker is throttling or briefly unavailable: raising lets Lambda retry the invocation."""


def _rejected(
    code: str, message: str, *, field: str | None = None, job_name: str | None = None
) -> dict[str, Any]:
    return {
        "status": "rejected",
        "retryable": False,
        "job_name": job_name,
        "error": {"code": code, "field": field, "message": message},
    }


def _quota_message(instance_type: str, use_spot: bool, aws_message: str) -> str:
    usage = "spot training job usage" if use_spot else "training job usage"
    return (
        f"no quota for {instance_type} ({aws_message}). Ask Service Quotas (SageMaker) to raise "
        f"'{instance_type} for {usage}', or start again with another instance_type (or use_spot toggled); "
        f"`python -m scripts.training quota --stage <Stage>` shows what the stage has."
    )


def start(
    event: object, *, settings: RunnerSettings, sagemaker: Any, sns: Any | None = None
) -> dict[str, Any]:
    """Validate ``event`` (no AWS call before it passes), then start its job unless it already exists."""
    # Known before parsing, so a malformed dataset event still reaches the notify topic.
    trigger: Trigger | None = (
        "dataset-event" if isinstance(event, Mapping) and event.get("source") == S3_SOURCE else None
    )
    try:
        request, trigger = parse_event(event)
        champion.check_request(request, settings)
        job = resolve(request, trigger, settings)
    except RequestError as exc:
        result = _rejected("invalid_request", str(exc), field=exc.field)
        return _report(result, trigger, settings, sns)
    try:
        compared_with = champion.find(request, settings, sagemaker)
    except RequestError as exc:
        return _report(_rejected("invalid_request", str(exc), field=exc.field), trigger, settings, sns)
    except ClientError as exc:
        raise _classify(exc) from exc
    params = create_training_job_params(job, settings, compared_with)
    name = params["TrainingJobName"]
    region = sagemaker.meta.region_name
    found = {"job_name": name, "console_url": aws.console_url(region, name), "retryable": False}
    try:
        existing = sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as exc:
        if not aws.is_not_found(exc):
            raise _classify(exc) from exc
    else:
        log.info(
            "training job already exists", extra={"job_name": name, "status": existing["TrainingJobStatus"]}
        )
        return {
            **found,
            "status": "already_started",
            "job_arn": existing["TrainingJobArn"],
            "job_status": existing["TrainingJobStatus"],
        }
    try:
        created = sagemaker.create_training_job(**params)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code == "ResourceInUse":  # a concurrent duplicate won the race
            return {**found, "status": "already_started", "job_arn": None, "job_status": None}
        if code == aws.QUOTA_CODE:
            message = _quota_message(job.instance_type, job.use_spot, aws.error_message(exc))
            return _report(_rejected("no_quota", message, job_name=name), trigger, settings, sns)
        if code == "ValidationException":
            message = (
                f"SageMaker rejected the job: {aws.error_message(exc)}; fix the request or the stage config"
            )
            return _report(_rejected("rejected_by_sagemaker", message, job_name=name), trigger, settings, sns)
        raise _classify(exc) from exc
    log.info("training job started", extra={"job_name": name, "trigger": trigger})
    return {**found, "status": "started", "job_arn": created["TrainingJobArn"], "job_status": "InProgress"}


def _classify(exc: ClientError) -> Exception:
    if aws.is_retryable(exc):
        return RetryableError(f"SageMaker is throttling or unavailable ({aws.error_code(exc)}); retry later")
    return exc


def _report(
    result: dict[str, Any], trigger: Trigger | None, settings: RunnerSettings, sns: Any
) -> dict[str, Any]:
    log.error("training request rejected", extra={"error": result["error"], "trigger": trigger})
    if trigger == "dataset-event" and sns is not None and settings.notify_topic_arn:
        sns.publish(
            TopicArn=settings.notify_topic_arn,
            Subject=f"[{settings.stage}] training not started for a new dataset"[:100],
            Message=json.dumps(result, indent=2),
        )
    return result


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point (app.launcher.runner.handler)."""
    settings, sagemaker, sns = aws.cold_start(RunnerSettings)
    return start(event, settings=settings, sagemaker=sagemaker, sns=sns)
