"""scripts/verify_endpoint.py against moto (CloudFormation stack outputs, SageMaker endpoint) and botocore Stubber
(sagemaker-runtime answers; a rolled-back stack status moto cannot produce). Runtime: ~3 s."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from app.contracts.invocation import is_synthetic
from infra.constructs.bake_load import SYNTHETIC_INFERENCE_ID
from scripts.lib.endpoint_checks import sample_jpeg, verify
from scripts.verify_endpoint import main
from tests.scripts.aws_fakes import inference_ids_sent, runtime_answering, stack_with_outputs

REGION = "us-east-1"
STACK = "Prod-Serving"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve@sha256:" + "a" * 64
GOOD_BODY = {
    "model": {"name": "yolo-detector", "version": "3"},
    "predictions": [
        {
            "image": {"width": 640, "height": 480},
            "detections": [
                {
                    "label": "person",
                    "class_id": 0,
                    "confidence": 0.9,
                    "box": {"x1": 1, "y1": 2, "x2": 3, "y2": 4},
                }
            ],
        }
    ],
}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto: an endpoint running config 'cfg-new' (variant c5-xlarge); the stack is created by each test."""
    with moto_endpoint() as clients:
        yield clients


@contextlib.contextmanager
def moto_endpoint() -> Iterator[dict[str, Any]]:
    """The ``aws`` fixture's endpoint (also the transcript docs/operating.md shows: scripts/transcripts/catalog.py)."""
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_model(ModelName="model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
        for config in ("cfg-old", "cfg-new"):
            sm.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=[
                    {
                        "VariantName": "c5-xlarge",
                        "ModelName": "model",
                        "InstanceType": "ml.c5.xlarge",
                        "InitialInstanceCount": 1,
                    }
                ],
            )
        sm.create_endpoint(EndpointName="endpoint-1", EndpointConfigName="cfg-new")
        yield {"cloudformation": boto3.client("cloudformation", region_name=REGION), "sagemaker": sm}


def deploy_stack(cfn: Any, *, expected_config: str) -> None:
    stack_with_outputs(
        cfn,
        STACK,
        {
            "EndpointName": "endpoint-1",
            "EndpointConfigName": expected_config,
            "VariantName": "c5-xlarge",
            "EndpointStatus": "created",
        },
    )


def run(aws: dict[str, Any], body: bytes = json.dumps(GOOD_BODY).encode()) -> Any:
    return verify(
        STACK, runtime=runtime_answering(body, region=REGION, sent=sample_jpeg()), image=sample_jpeg(), **aws
    )


def test_endpoint_running_the_stack_config_and_answering_passes(aws: dict[str, Any]) -> None:
    deploy_stack(aws["cloudformation"], expected_config="cfg-new")
    report = run(aws)
    assert report.ok, report.render()
    assert [c.name for c in report.checks] == [
        "stack",
        "endpoint status",
        "endpoint config",
        "variant",
        "invocation",
    ]


def test_verify_marks_its_request_so_data_capture_readers_drop_it(aws: dict[str, Any]) -> None:
    """Issue 22: verify's sample image landed in the endpoint's data capture unmarked, like a client's request."""
    deploy_stack(aws["cloudformation"], expected_config="cfg-new")
    runtime = runtime_answering(json.dumps(GOOD_BODY).encode(), region=REGION)
    sent = inference_ids_sent(runtime)
    assert verify(STACK, runtime=runtime, image=sample_jpeg(), **aws).ok
    assert len(sent) == 1 and is_synthetic(sent[0]), sent
    assert is_synthetic(SYNTHETIC_INFERENCE_ID)  # one marker for the bake load and verify
    assert not is_synthetic(None) and not is_synthetic("order-4711")


def test_endpoint_on_another_config_is_reported_as_silent_rollback(aws: dict[str, Any]) -> None:
    # The deploy asked for a config the endpoint does not run.
    deploy_stack(aws["cloudformation"], expected_config="cfg-newer")
    report = run(aws)
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["endpoint config"]
    assert "SILENT ROLLBACK: the endpoint runs cfg-new, the stack asked for cfg-newer" in failed[0].detail


def test_rolled_back_stack_fails_before_touching_the_endpoint() -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(cfn)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": STACK,
                    "StackStatus": "UPDATE_ROLLBACK_COMPLETE",
                    "CreationTime": "2025-01-06T00:00:00Z",
                    "Outputs": [{"OutputKey": "EndpointName", "OutputValue": "endpoint-1"}],
                }
            ]
        },
        {"StackName": STACK},
    )
    with stubber:
        report = verify(STACK, cloudformation=cfn, sagemaker=None, runtime=None, image=b"")
    assert not report.ok
    assert (
        report.checks[-1].detail == f"{STACK} is UPDATE_ROLLBACK_COMPLETE (the last deployment rolled back)"
    )


def test_response_outside_the_invocation_contract_fails(aws: dict[str, Any]) -> None:
    deploy_stack(aws["cloudformation"], expected_config="cfg-new")
    report = run(aws, body=b'{"boxes": []}')
    assert [c.name for c in report.checks if not c.ok] == ["invocation"]


def test_stage_without_endpoint_says_why(aws: dict[str, Any]) -> None:
    stack_with_outputs(
        aws["cloudformation"],
        STACK,
        {"EndpointStatus": "Prod: no endpoint, the stage has no model version yet"},
    )
    report = verify(STACK, runtime=None, image=b"", **aws)
    assert not report.ok
    assert "no model version" in report.checks[-1].detail


def test_missing_stack_is_named(aws: dict[str, Any]) -> None:
    report = verify("Nope-Serving", runtime=None, image=b"", **aws)
    assert not report.ok and "Nope-Serving" in report.checks[0].detail


def test_cli_rejects_a_missing_image_file(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--stage", "Prod", "--image", str(tmp_path / "none.jpg")])
    assert exit_info.value.code == 2
    assert "none.jpg: no such file" in capsys.readouterr().err
