"""The load-test advice is labelled with the precision the target served, so the stage records the capacity of the
graph it was measured on (autoscaling.measured_precision; infra.config refuses a mismatch)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from scripts import loadtest
from scripts.lib import load

REGION = "eu-west-1"


def _step(rps: float) -> load.Step:
    return load.Step(4, 100, 0, 10.0, rps, 50.0, 90.0, {})


def test_advice_carries_the_precision_measured() -> None:
    advice = loadtest.advise(_step(30.0), safety_factor=0.5, peak_rps=None, min_capacity=1, precision="int8")
    assert (advice.precision, advice.invocations_per_instance_target) == ("int8", 900.0)


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _endpoint(session: boto3.Session, environment: dict[str, str]) -> str:
    sm = session.client("sagemaker")
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve:x",
            "Environment": environment,
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.c5.large", "InitialInstanceCount": 1}
        ],
    )
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
    return "e"


@pytest.mark.parametrize(("environment", "expected"), [({"SERVING_PRECISION": "int8"}, "int8"), ({}, "fp32")])
def test_an_endpoint_precision_is_read_from_its_model(
    session: boto3.Session, environment: dict[str, str], expected: str
) -> None:
    assert loadtest.endpoint_precision(session, _endpoint(session, environment)) == expected


def test_the_load_test_marks_its_requests_to_an_endpoint_as_synthetic(session: boto3.Session) -> None:
    """Its requests land in the endpoint's data capture: release compare must be able to drop them."""
    sent: list[str | None] = []
    session.events.register(
        "provide-client-params.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: sent.append(params.get("InferenceId")),
    )
    loadtest.probe_endpoint(session, "e", b"jpeg", "image/jpeg")
    assert loadtest.endpoint_load(session, "e", b"jpeg", "image/jpeg", 5.0, 1)()() == 200
    assert sent == ["synthetic-loadtest", "synthetic-loadtest"]
