"""Runner errors with botocore's Stubber (moto has no quota or throttling): what the operator is told, what is
retried, and that invalid payloads never reach AWS (a Stubber with nothing queued fails on any call)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.launcher import runner
from app.launcher.settings import RunnerSettings
from tests.app.launcher.call_recorder import CallRecorder
from tests.app.launcher.stage_settings import DATASET_URI, REGION

NOT_FOUND = ("ValidationException", "Requested resource not found.")


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber


def _no_champion(stubber: Stubber) -> None:
    """The stage has no Approved version yet (the runner looks for the champion first)."""
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": []})


def _create_fails(stubber: Stubber, code: str, message: str, **kwargs: Any) -> None:
    """The job does not exist yet; CreateTrainingJob answers ``code``."""
    _no_champion(stubber)
    stubber.add_client_error("describe_training_job", *NOT_FOUND)
    stubber.add_client_error("create_training_job", code, message, **kwargs)


def test_no_gpu_quota_is_rejected_as_not_retryable_with_what_to_do(
    runner_settings: RunnerSettings, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    _create_fails(
        stubber,
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g5.xlarge for spot training job usage' is 0 Instances",
    )
    result = runner.start({"dataset_uri": DATASET_URI}, settings=runner_settings, sagemaker=client)
    assert result["status"] == "rejected"
    assert result["retryable"] is False
    assert result["error"]["code"] == "no_quota"
    assert "ml.g5.xlarge for spot training job usage" in result["error"]["message"]
    assert "Service Quotas" in result["error"]["message"]
    stubber.assert_no_pending_responses()


def test_throttling_is_raised_as_retryable(
    runner_settings: RunnerSettings, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    _create_fails(stubber, "ThrottlingException", "Rate exceeded", http_status_code=400)
    with pytest.raises(runner.RetryableError, match="ThrottlingException"):
        runner.start({"dataset_uri": DATASET_URI}, settings=runner_settings, sagemaker=client)


def test_throttled_describe_is_retryable_too(
    runner_settings: RunnerSettings, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    _no_champion(stubber)
    stubber.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded")
    with pytest.raises(runner.RetryableError):
        runner.start({"dataset_uri": DATASET_URI}, settings=runner_settings, sagemaker=client)


def test_sagemaker_validation_error_is_rejected_not_retried(
    runner_settings: RunnerSettings, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    _create_fails(stubber, "ValidationException", "Invalid VpcConfig")
    result = runner.start({"dataset_uri": DATASET_URI}, settings=runner_settings, sagemaker=client)
    assert (result["status"], result["error"]["code"]) == ("rejected", "rejected_by_sagemaker")
    assert "Invalid VpcConfig" in result["error"]["message"]


def test_runner_clients_retry_throttling_in_standard_mode() -> None:
    client = runner.aws.client("sagemaker")
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.retries["total_max_attempts"] >= 3


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
_bad_field = st.sampled_from(
    [
        {"dataset_uri": "http://bucket/x/"},
        {"dataset_uri": "s3://stage-datasets-bucket"},
        {"hyperparameters": {"epochs": 0}},
        {"hyperparameters": {"no_such_param": 1}},
        {"hyperparameters": {"imgsz": 100}},
        {"instance_type": "ml.nope.xlarge"},
        {"instance_type": "ml.c7g.xlarge"},  # Graviton: our images are linux/amd64 only
        {"instance_count": 0},
        {"volume_size_gb": 1},
        {"pretrained_uri": "s3://stage-datasets-bucket/model.bin"},
        {"run_label": "has spaces"},
        {"unexpected": True},
    ]
)
_invalid_payloads = (
    _json.filter(lambda v: not isinstance(v, dict) or "dataset_uri" not in v)
    | _bad_field.map(lambda bad: {"dataset_uri": DATASET_URI, **bad})
    | st.builds(lambda v: {"dataset_uri": v}, _json.filter(lambda v: not isinstance(v, str)))
    | st.builds(lambda d: {"source": "aws.s3", "detail-type": "Object Created", "detail": d}, _json)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_invalid_payloads)
def test_invalid_payloads_never_reach_aws(runner_settings: RunnerSettings, payload: object) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    calls = CallRecorder(client)
    with Stubber(client) as stubber:  # nothing queued: any call would raise
        result = runner.start(payload, settings=runner_settings, sagemaker=client)
        stubber.assert_no_pending_responses()
    assert calls.calls == []
    assert result["status"] == "rejected"
    assert result["error"]["field"]
    assert result["error"]["message"].startswith(f"field '{result['error']['field']}'")


@pytest.mark.parametrize(
    ("hyperparameters", "named"),
    [({"int8_max_map_drop": 1.0}, "int8_max_map_drop=1 is above this stage's cap 0.01"),
     ({"int8_max_class_drop": 0.5}, "int8_max_class_drop=0.5 is above this stage's cap 0.05")],
)  # fmt: skip
def test_an_int8_bar_looser_than_the_stage_cap_is_refused_before_any_aws_call(
    runner_settings: RunnerSettings,
    stubbed: tuple[Any, Stubber],
    hyperparameters: dict[str, float],
    named: str,
) -> None:
    """Whoever launches a job could set the int8 gate to 1.0 (ship any int8); the stage's cap says how loose it may be."""
    client, _ = stubbed  # nothing queued: any AWS call fails the test
    event = {"dataset_uri": DATASET_URI, "hyperparameters": hyperparameters}
    result = runner.start(event, settings=runner_settings, sagemaker=client)
    assert result["status"] == "rejected"
    assert result["error"]["field"] == "hyperparameters"
    assert named in result["error"]["message"]


def test_a_stricter_int8_bar_than_the_cap_is_the_job_s_to_choose(
    runner_settings: RunnerSettings, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    _no_champion(stubber)
    stubber.add_client_error("describe_training_job", *NOT_FOUND)
    stubber.add_response(
        "create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"}
    )
    event = {"dataset_uri": DATASET_URI, "hyperparameters": {"int8_max_map_drop": 0.005}}
    assert runner.start(event, settings=runner_settings, sagemaker=client)["status"] == "started"
