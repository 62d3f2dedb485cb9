"""Registrar Lambda against moto: a completed job becomes a model version with the right approval status,
a failed one becomes an SNS message with its failure reason."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from moto.sagemaker.models import sagemaker_backends

from app.contracts.comparison import Comparison
from app.launcher import registrar, runner
from app.launcher.settings import RegistrarSettings, RunnerSettings
from tests.app.launcher.events import state_change
from tests.app.launcher.stage_settings import ACCOUNT, CHAMPION_ENV, DATASET_URI, REGION, SERVE_IMAGE
from tests.fixtures.comparisons import REPORTS, model_tar, png, upload

FIRST_MODEL = Comparison(status="no_champion", reason="the stage has no Approved version")


def completed_job(
    runner_settings: RunnerSettings,
    sagemaker: Any,
    map50_95: float,
    s3: Any = None,
    comparison: Comparison | None = FIRST_MODEL,
    *,
    request: dict[str, Any] | None = None,
) -> str:
    """A job started by the runner (moto completes it at once) whose container reported ``map50_95`` last and,
    with ``s3``, wrote a model.tar.gz holding ``comparison`` (and its report PNGs)."""
    started = runner.start(
        {"dataset_uri": DATASET_URI, **(request or {})}, settings=runner_settings, sagemaker=sagemaker
    )
    job = sagemaker_backends[ACCOUNT][REGION].training_jobs[started["job_name"]]
    if s3 is not None:
        reports = {path: png() for path in REPORTS.values()} if comparison and comparison.reports else {}
        upload(s3, job.model_artifacts["S3ModelArtifacts"], model_tar(comparison, reports=reports))
    # moto reports only its own 'train:progress'; SageMaker would report our MetricDefinitions' last values.
    job.final_metric_data_list = [
        {"MetricName": "val:mAP50", "Value": map50_95 + 0.2, "Timestamp": job.creation_time},
        {"MetricName": "val:mAP50-95", "Value": map50_95, "Timestamp": job.creation_time},
    ]
    return str(started["job_name"])


@pytest.fixture
def group(sagemaker: Any, registrar_settings: RegistrarSettings) -> str:
    sagemaker.create_model_package_group(ModelPackageGroupName=registrar_settings.model_package_group_name)
    return registrar_settings.model_package_group_name


@pytest.mark.parametrize(("map50_95", "expected"), [(0.62, "Approved"), (0.31, "PendingManualApproval")])
def test_completed_job_becomes_a_model_version_approved_only_above_the_bar(
    runner_settings: RunnerSettings,
    registrar_settings: RegistrarSettings,
    sagemaker: Any,
    group: str,
    sns_inbox: tuple[Any, str, Any, str],
    s3: Any,
    map50_95: float,
    expected: str,
) -> None:
    sns, *_ = sns_inbox
    name = completed_job(runner_settings, sagemaker, map50_95, s3)
    result = registrar.on_state_change(
        state_change(name, "Completed"), settings=registrar_settings, sagemaker=sagemaker, sns=sns, s3=s3
    )
    [summary] = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert result["model_package_arn"] == summary["ModelPackageArn"]
    assert package["ModelApprovalStatus"] == expected
    assert package["CustomerMetadataProperties"]["metric:val:mAP50-95"] == f"{map50_95:.6g}"
    assert package["CustomerMetadataProperties"]["training_job"] == name
    assert package["CustomerMetadataProperties"]["dataset_uri"] == DATASET_URI
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["Image"] == SERVE_IMAGE
    assert container["ModelDataUrl"].endswith(f"{name}/output/model.tar.gz")


def test_version_below_the_bar_is_announced_for_review(
    runner_settings: RunnerSettings,
    registrar_settings: RegistrarSettings,
    sagemaker: Any,
    group: str,
    sns_inbox: tuple[Any, str, Any, str],
    s3: Any,
) -> None:
    sns, topic, sqs, queue = sns_inbox
    settings = registrar_settings.model_copy(update={"notify_topic_arn": topic})
    name = completed_job(runner_settings, sagemaker, 0.1, s3)
    registrar.on_state_change(
        state_change(name, "Completed"), settings=settings, sagemaker=sagemaker, sns=sns, s3=s3
    )
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    envelope = json.loads(message["Body"])
    assert "waits for review" in envelope["Subject"]
    assert json.loads(envelope["Message"])["approval"] == "PendingManualApproval"


def test_failed_job_is_published_with_its_failure_reason(
    registrar_settings: RegistrarSettings, sagemaker: Any, sns_inbox: tuple[Any, str, Any, str]
) -> None:
    sns, topic, sqs, queue = sns_inbox
    settings = registrar_settings.model_copy(update={"notify_topic_arn": topic})
    event = state_change("yolo-dev-ds-0123456789ab", "Failed", "AlgorithmError: dataset.json missing")
    result = registrar.on_state_change(event, settings=settings, sagemaker=sagemaker, sns=sns, s3=None)
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    envelope = json.loads(message["Body"])
    body = json.loads(envelope["Message"])
    assert result["status"] == "notified"
    assert envelope["Subject"] == "[Dev] training job Failed: yolo-dev-ds-0123456789ab"
    assert body["failure_reason"] == "AlgorithmError: dataset.json missing"
    assert body["console_url"].endswith("#/jobs/yolo-dev-ds-0123456789ab")


def test_other_stages_jobs_are_ignored(registrar_settings: RegistrarSettings, sagemaker: Any) -> None:
    result = registrar.on_state_change(
        state_change("yolo-prod-ds-0123", "Completed"),
        settings=registrar_settings,
        sagemaker=sagemaker,
        sns=None,
        s3=None,
    )
    assert result["status"] == "ignored"
    assert sagemaker.list_model_packages()["ModelPackageSummaryList"] == []


def test_approval_at_exactly_the_bar_is_approved() -> None:
    assert registrar.approval({"val:mAP50-95": 0.5}, 0.5)[0] == "Approved"


def test_a_shipped_int8_below_the_bar_is_not_approved_on_the_fp32_metric() -> None:
    """A stage may serve int8 when the model ships it: the version is approved on that metric too."""
    shipped_low = {"val:mAP50-95": 0.6, "int8:shipped": 1.0, "int8:mAP50-95": 0.45}
    status, why = registrar.approval(shipped_low, 0.5)
    assert status == "PendingManualApproval" and "int8:mAP50-95 0.45 < quality bar 0.5000" in why
    assert registrar.approval({**shipped_low, "int8:mAP50-95": 0.5}, 0.5)[0] == "Approved"
    # int8 not shipped: only fp32 can be served, so only its metric counts
    assert registrar.approval({**shipped_low, "int8:shipped": 0.0}, 0.5)[0] == "Approved"


def test_missing_quality_metric_needs_manual_approval() -> None:
    status, why = registrar.approval({"val:mAP50": 0.9}, 0.5)
    assert status == "PendingManualApproval"
    assert "val:mAP50-95 missing" in why


@pytest.mark.usefixtures("cold_start")
def test_handler_reads_its_settings_from_the_lambda_environment(
    monkeypatch: pytest.MonkeyPatch, sagemaker: Any
) -> None:
    environment = {
        "STAGE": "Dev",
        "JOB_NAME_PREFIX": "yolo-dev-",
        "QUALITY_BAR_MAP50_95": "0.5",
        "SERVE_IMAGE_URI": SERVE_IMAGE,
        **CHAMPION_ENV,
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    ours = registrar.handler(state_change("yolo-dev-ds-0123", "Stopped"), None)
    theirs = registrar.handler(state_change("yolo-prod-ds-0123", "Stopped"), None)
    assert (ours["status"], theirs["status"]) == ("notified", "ignored")  # the stage's prefix was read


def test_registrar_lambda_does_not_load_the_runner_module() -> None:
    code = "import sys, app.launcher.registrar; print('app.launcher.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
