"""The runner passes the stage's champion to the job (moto): its latest Approved model package version as the
``champion`` channel and the hyperparameters naming it and the stage's tolerances; nothing when the stage has none or
the request opts out; a named version is checked; bad values are refused before any AWS call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.contracts.channels import CHAMPION_CHANNEL
from app.launcher import runner
from app.launcher.settings import RunnerSettings
from tests.app.launcher.call_recorder import CallRecorder
from tests.app.launcher.stage_settings import ARTIFACTS, DATASET_URI, GROUP, REGION, SERVE_IMAGE


def _version(sagemaker: Any, status: str, model_data: str, group: str = GROUP) -> str:
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": SERVE_IMAGE, "ModelDataUrl": model_data}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    )


def _model(job: str) -> str:
    return f"s3://{ARTIFACTS}/training-output/{job}/output/model.tar.gz"


@pytest.fixture
def group(sagemaker: Any) -> str:
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    return GROUP


def _start(runner_settings: RunnerSettings, sagemaker: Any, **request: Any) -> tuple[dict[str, Any], Any]:
    calls = CallRecorder(sagemaker)
    result = runner.start(
        {"dataset_uri": DATASET_URI, **request}, settings=runner_settings, sagemaker=sagemaker
    )
    sent = calls.of("CreateTrainingJob")
    return result, sent[0] if sent else None


def _channels(sent: dict[str, Any]) -> dict[str, str]:
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in sent["InputDataConfig"]}


def test_the_latest_approved_version_is_the_champion_channel_and_only_then(
    runner_settings: RunnerSettings, sagemaker: Any, group: str
) -> None:
    _version(sagemaker, "PendingManualApproval", _model("yolo-dev-first"))
    result, before = _start(runner_settings, sagemaker, run_label="before-approval")
    assert result["status"] == "started", result
    assert CHAMPION_CHANNEL not in _channels(before)
    assert not any(k.startswith("champion_") for k in before["HyperParameters"])
    _version(sagemaker, "Approved", _model("yolo-dev-old"))
    newest = _version(sagemaker, "Approved", _model("yolo-dev-new"))
    _version(sagemaker, "PendingManualApproval", _model("yolo-dev-pending"))  # newer, but not approved
    result, sent = _start(runner_settings, sagemaker)
    assert result["status"] == "started", result
    assert _channels(sent)[CHAMPION_CHANNEL] == _model("yolo-dev-new")
    [channel] = [c for c in sent["InputDataConfig"] if c["ChannelName"] == CHAMPION_CHANNEL]
    assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert channel["InputMode"] == "File"
    hyperparameters = sent["HyperParameters"]
    assert hyperparameters["champion_version"] == newest
    assert hyperparameters["champion_model_data"] == _model("yolo-dev-new")
    assert hyperparameters["champion_map_drop_tolerance"] == "0.01"
    assert hyperparameters["champion_class_drop_tolerance"] == "0.05"
    assert hyperparameters["champion_min_class_instances"] == "20"
    assert hyperparameters["champion_confidence"] == "0.95"


def test_a_request_may_opt_out_or_name_the_version(
    runner_settings: RunnerSettings, sagemaker: Any, group: str
) -> None:
    older = _version(sagemaker, "Approved", _model("yolo-dev-old"))
    _version(sagemaker, "Approved", _model("yolo-dev-new"))
    _, opted_out = _start(runner_settings, sagemaker, champion="none")
    assert CHAMPION_CHANNEL not in _channels(opted_out)
    _, named = _start(runner_settings, sagemaker, champion=older)
    assert _channels(named)[CHAMPION_CHANNEL] == _model("yolo-dev-old")
    assert named["HyperParameters"]["champion_version"] == older
    assert (
        named["TrainingJobName"] != opted_out["TrainingJobName"]
    )  # the choice is part of the job's identity


def test_a_named_version_that_does_not_exist_or_is_another_group_s_is_refused(
    runner_settings: RunnerSettings, sagemaker: Any, group: str
) -> None:
    sagemaker.create_model_package_group(ModelPackageGroupName="prod-yolo-detector")
    theirs = _version(sagemaker, "Approved", _model("yolo-prod-x"), group="prod-yolo-detector")
    missing = theirs.replace("prod-yolo-detector/1", f"{GROUP}/7")
    for arn, expected in ((missing, "does not exist"), (theirs, "expected one of this stage's group")):
        result, sent = _start(runner_settings, sagemaker, champion=arn)
        assert (result["status"], result["error"]["field"]) == ("rejected", "champion"), result
        assert expected in result["error"]["message"] and arn in result["error"]["message"]
        assert sent is None


def test_a_champion_the_training_role_cannot_read_is_refused_with_the_way_out(
    runner_settings: RunnerSettings, sagemaker: Any, group: str
) -> None:
    _version(sagemaker, "Approved", "s3://another-account-bucket/models/model.tar.gz")
    result, sent = _start(runner_settings, sagemaker)
    assert (result["status"], result["error"]["field"]) == ("rejected", "champion"), result
    assert "s3://another-account-bucket/models/model.tar.gz" in result["error"]["message"]
    assert "'champion': 'none'" in result["error"]["message"]
    assert sent is None


@pytest.fixture
def no_aws() -> Iterator[Any]:
    """A SageMaker client that fails the test on any call (nothing queued)."""
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client):
        yield client


@pytest.mark.parametrize(
    ("request_fields", "field", "expected"),
    [
        ({"champion": "latest"}, "champion", "String should match pattern"),
        ({"champion": "arn:aws:sagemaker:us-east-1:123456789012:model/x"}, "champion", "pattern"),
        (
            {"champion": "arn:aws:sagemaker:us-east-1:123456789012:model-package/prod-yolo-detector/1"},
            "champion",
            "is a version of 'prod-yolo-detector', expected one of this stage's group 'dev-yolo-detector'",
        ),
        (
            {"hyperparameters": {"champion_version": "x"}},
            "hyperparameters.champion_version",
            "set by the runner",
        ),
        (
            {"hyperparameters": {"champion_model_data": "s3://b/m.tar.gz"}},
            "hyperparameters.champion_model_data",
            "set by the runner",
        ),
        (
            {"hyperparameters": {"champion_class_drop_tolerance": "0.2"}},
            "hyperparameters.champion_class_drop_tolerance",
            "expected at most 0.05",
        ),
        (
            {"hyperparameters": {"champion_confidence": "0.8"}},
            "hyperparameters.champion_confidence",
            "expected at least 0.95",
        ),
    ],
)
def test_bad_champion_values_are_refused_before_any_aws_call(
    runner_settings: RunnerSettings,
    no_aws: Any,
    request_fields: dict[str, Any],
    field: str,
    expected: str,
) -> None:
    result = runner.start(
        {"dataset_uri": DATASET_URI, **request_fields}, settings=runner_settings, sagemaker=no_aws
    )
    assert (result["status"], result["error"]["field"]) == ("rejected", field), result
    assert expected in result["error"]["message"]
