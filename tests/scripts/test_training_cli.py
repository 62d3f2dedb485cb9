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

REGION = "us-east-1"


def _outputs_template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
    )


def test_versions_lists_the_stage_group_found_through_stack_outputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="Dev-Training",
            TemplateBody=_outputs_template({"ModelPackageGroupName": "yolo-detector-dev"}),
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
        code = training.main(["--region", REGION, "versions", "--stage", "Nope"])
    assert code == 1
    assert "Nope-Training" in capsys.readouterr().err


def test_params_become_typed_hyperparameters() -> None:
    args = training.parser().parse_args(
        ["start", "--stage", "Dev", "--dataset-uri", "s3://b/d/", "-p", "epochs=50", "-p", "optimizer=AdamW"]
    )
    request = training.build_request(args)
    assert request == {"dataset_uri": "s3://b/d/", "hyperparameters": {"epochs": 50, "optimizer": "AdamW"}}


def test_param_without_value_is_a_usage_error() -> None:
    args = training.parser().parse_args(
        ["start", "--stage", "Dev", "--dataset-uri", "s3://b/d/", "-p", "epochs"]
    )
    with pytest.raises(training.CommandError, match="expected NAME=VALUE"):
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
        assert training.invoke_runner(client, "runner-fn", {"dataset_uri": "s3://b/d/"}) == answer


def test_runner_function_error_becomes_a_command_error() -> None:
    client = boto3.client("lambda", region_name=REGION)
    error = {"errorMessage": "SageMaker is throttling or unavailable (ThrottlingException); retry later"}
    with Stubber(client) as stubber:
        stubber.add_response("invoke", _invoke_response(error, "Unhandled"))
        with pytest.raises(training.CommandError, match="ThrottlingException"):
            training.invoke_runner(client, "runner-fn", {"dataset_uri": "s3://b/d/"})


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
        checks = training.check_quotas(client, needed)
    assert [(c.quota_name, c.ok) for c in checks] == [
        ("ml.g5.2xlarge for spot training job usage", False),
        ("ml.g5.xlarge for endpoint usage", True),
        ("ml.c6i.large for endpoint usage", False),
    ]
