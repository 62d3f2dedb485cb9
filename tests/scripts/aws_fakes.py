"""What the operator commands read from AWS, faked for their tests: a deployed stack with given outputs (moto
CloudFormation) and a sagemaker-runtime client that answers (botocore Stubber: moto does not invoke endpoints)."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber


def stack_with_outputs(cloudformation: Any, name: str, outputs: Mapping[str, str]) -> None:
    """Create ``name`` (one queue) with ``outputs``; no outputs at all when empty (a stack of an older version)."""
    template: dict[str, Any] = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    if outputs:
        template["Outputs"] = {key: {"Value": value} for key, value in outputs.items()}
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def runtime_answering(body: bytes, *, region: str, times: int = 1, sent: Any = ANY) -> Any:
    """A sagemaker-runtime client whose ``endpoint-1`` answers ``body`` to the next ``times`` JPEG invocations;
    ``sent``: the image it must receive (any by default)."""
    client = boto3.client("sagemaker-runtime", region_name=region)
    stubber = Stubber(client)
    for _ in range(times):
        stubber.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
            {
                "EndpointName": "endpoint-1",
                "ContentType": "image/jpeg",
                "Accept": "application/json",
                "Body": sent,
                "InferenceId": ANY,  # the platform marks its own requests (app/contracts/invocation.py)
            },
        )
    stubber.activate()
    return client
