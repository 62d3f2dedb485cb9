"""scripts/training.py against moto (CloudFormation outputs, model registry) and botocore Stubber (Lambda invoke,
Service Quotas, which moto cannot run offline). Runtime ~3 s."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from scripts import training
from tests.scripts.aws_fakes import stack_with_outputs

REGION = "us-east-1"


def test_versions_lists_the_stage_group_found_through_stack_outputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with mock_aws():
        stack_with_outputs(
            boto3.client("cloudformation", region_name=REGION),
            "Dev-Training",
            {"ModelPackageGroupName": "yolo-detector-dev"},
        )
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName="yolo-detector-dev")
        sagemaker.create_model_package(
            ModelPackageGroupName="yolo-detector-dev",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"metric:val:mAP50-95": "0.61", "training_job": "yolo-dev-ds-abc"},
        )
        code = training.main(["--region", REGION, "versions", "--stage", "Dev"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Approved" in out
    assert "mAP50-95=0.61" in out
    assert "yolo-dev-ds-abc" in out


def test_missing_stack_is_reported_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        code = training.main(["--region", REGION, "versions", "--stage", "Staging"])
    assert code == 1
    assert "stack Staging-Training does not exist" in capsys.readouterr().err


def test_params_become_typed_hyperparameters() -> None:
    args = training.parser().parse_args(
        [
            "start",
            "--stage",
            "Dev",
            "--dataset-uri",
            "s3://bkt/d/",
            "-p",
            "epochs=50",
            "-p",
            "optimizer=AdamW",
        ]
    )
    request = training.build_request(args)
    assert request == {"dataset_uri": "s3://bkt/d/", "hyperparameters": {"epochs": 50, "optimizer": "AdamW"}}


def test_champion_choice_goes_into_the_request() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/yolo-detector-dev-x/3"
    for choice in ("none", arn):
        args = training.parser().parse_args(
            ["start", "--stage", "Dev", "--dataset-uri", "s3://bkt/d/", "--champion", choice]
        )
        assert training.build_request(args)["champion"] == choice


def test_param_without_value_is_a_usage_error() -> None:
    args = training.parser().parse_args(
        ["start", "--stage", "Dev", "--dataset-uri", "s3://bkt/d/", "-p", "epochs"]
    )
    with pytest.raises(training.OperatorError, match="expected NAME=VALUE"):
        training.build_request(args)


def _invoke_response(payload: dict[str, Any], function_error: str | None = None) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
    if function_error:
        response["FunctionError"] = function_error
    return response


def test_runner_answer_is_returned_as_sent() -> None:
    client = boto3.client("lambda", region_name=REGION)
    answer = {"status": "started", "job_name": "yolo-dev-d-0123456789ab", "console_url": "https://x"}
    with Stubber(client) as stubber:
        stubber.add_response("invoke", _invoke_response(answer))
        assert training.invoke_runner(client, "runner-fn", {"dataset_uri": "s3://bkt/d/"}) == answer


def test_runner_function_error_becomes_a_command_error() -> None:
    client = boto3.client("lambda", region_name=REGION)
    error = {"errorMessage": "SageMaker is throttling or unavailable (ThrottlingException); retry later"}
    with Stubber(client) as stubber:
        stubber.add_response("invoke", _invoke_response(error, "Unhandled"))
        with pytest.raises(training.OperatorError, match="ThrottlingException"):
            training.invoke_runner(client, "runner-fn", {"dataset_uri": "s3://bkt/d/"})


def test_quota_names_follow_the_stage_config() -> None:
    assert training.needed_quotas("Prod") == {
        "ml.g5.2xlarge for spot training job usage": 1,
        "ml.g5.xlarge for endpoint usage": 16,  # blue/green at max capacity 8: old + new fleet
    }


def test_quota_check_flags_low_and_missing_quotas() -> None:
    client = boto3.client("service-quotas", region_name=REGION)
    quotas = [
        {"QuotaName": "ml.g5.2xlarge for spot training job usage", "Value": 0.0},
        {"QuotaName": "ml.g5.xlarge for endpoint usage", "Value": 8.0},
    ]
    needed = {
        "ml.g5.2xlarge for spot training job usage": 1,
        "ml.g5.xlarge for endpoint usage": 8,
        "ml.c6i.large for endpoint usage": 1,
    }
    with Stubber(client) as stubber:
        stubber.add_response("list_service_quotas", {"Quotas": quotas}, {"ServiceCode": "sagemaker"})
        # the one with no applied value is looked up among the AWS defaults (none here either)
        stubber.add_response("list_aws_default_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
        checks = training.check_quotas(client, needed)
    assert [(c.quota_name, c.ok) for c in checks] == [
        ("ml.g5.2xlarge for spot training job usage", False),
        ("ml.g5.xlarge for endpoint usage", True),
        ("ml.c6i.large for endpoint usage", False),
    ]


def _raw_invoke_response(body: bytes, function_error: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
    if function_error:
        response["FunctionError"] = function_error
    return response


@pytest.mark.parametrize("function_error", [None, "Unhandled"])
def test_a_runner_payload_that_is_not_json_is_an_error_message(function_error: str | None) -> None:
    client = boto3.client("lambda", region_name=REGION)
    body = b"Task timed out after 30.03 seconds\n<html>"
    with Stubber(client) as stubber:
        stubber.add_response("invoke", _raw_invoke_response(body, function_error))
        with pytest.raises(training.OperatorError) as info:
            training.invoke_runner(client, "runner-fn", {"dataset_uri": "s3://bkt/d/"})
    message = str(info.value)
    assert "not JSON" in message and "Task timed out" in message and "Lambda console: runner-fn" in message
    assert "\n" not in message


def _deployed_dev(lambda_client: Any) -> None:
    """moto: Dev-Training with its runner output, and a dataset at s3://dev-datasets/d/."""
    stack_with_outputs(
        boto3.client("cloudformation", region_name=REGION),
        "Dev-Training",
        {"RunnerFunctionName": "runner-fn"},
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="dev-datasets")
    s3.put_object(Bucket="dev-datasets", Key="d/dataset.json", Body=b"{}")


def test_a_runner_answer_without_a_job_name_is_an_error_message() -> None:
    lambda_client = boto3.client("lambda", region_name=REGION)
    args = training.parser().parse_args(["start", "--stage", "Dev", "--dataset-uri", "s3://dev-datasets/d/"])
    with Stubber(lambda_client) as stubber, mock_aws():
        stubber.add_response("invoke", _invoke_response({"status": "started"}))
        _deployed_dev(lambda_client)
        with pytest.raises(training.OperatorError, match="expected 'status' and 'job_name'"):
            training.cmd_start(args, _Session(lambda_client=lambda_client))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset-uri", "s3://dev-datasets/missing/"], "--dataset-uri: s3://dev-datasets/missing/dataset.json does not exist"),
        (["--dataset-uri", "s3://dev-datasets/d/", "--pretrained-uri", "s3://dev-datasets/m.pt"], "--pretrained-uri: s3://dev-datasets/m.pt does not exist"),
    ],
)  # fmt: skip
def test_start_refuses_a_missing_dataset_or_checkpoint_before_invoking_the_runner(
    argv: list[str], message: str
) -> None:
    lambda_client = boto3.client("lambda", region_name=REGION)
    args = training.parser().parse_args(["start", "--stage", "Dev", *argv])
    with Stubber(lambda_client) as stubber, mock_aws():
        stubber.add_response("invoke", _invoke_response({"status": "started", "job_name": "j"}))
        _deployed_dev(lambda_client)
        with pytest.raises(training.OperatorError) as info:
            training.cmd_start(args, _Session(lambda_client=lambda_client))
        with pytest.raises(AssertionError):  # the runner was never invoked: its queued answer is still there
            stubber.assert_no_pending_responses()
    assert message in str(info.value)


class _Session:
    """Stands in for boto3.Session: the given stubbed clients, moto for every other service."""

    def __init__(self, **clients: Any) -> None:
        self.clients = {name.removesuffix("_client"): client for name, client in clients.items()}

    def client(self, service: str) -> Any:
        return self.clients.get(service) or boto3.client(service, region_name=REGION)


def test_follow_of_a_failed_job_exits_3_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    job = {
        "TrainingJobName": "yolo-dev-1",
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/yolo-dev-1",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://bkt/m.tar.gz"},
        "TrainingJobStatus": "Failed",
        "SecondaryStatus": "Failed",
        "FailureReason": "AlgorithmError: dataset.json missing",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "img"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": "2026-11-30T00:00:00Z",
    }
    with Stubber(client) as stubber:
        stubber.add_response("describe_training_job", job, {"TrainingJobName": "yolo-dev-1"})
        args = training.parser().parse_args(["follow", "--stage", "Dev", "yolo-dev-1", "--once"])
        wrapped = training.cli.command(training.cmd_follow)
        assert wrapped(args, _Session(sagemaker_client=client)) == 3
    err = capsys.readouterr().err
    assert err == "error: training job yolo-dev-1 failed: AlgorithmError: dataset.json missing\n"
