"""scripts/promote_image.py against moto: the target repository is found through the stage's Data stack outputs and
the promoted pin keeps the source digest. (moto cannot serve layer downloads, so the blob copy itself is only
exercised against real ECR.)"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from scripts.lib.cli import OperatorError
from scripts.promote_image import ImageRef, main, promote, target_repository_uri

REGION = "us-east-1"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 9,
                "digest": "sha256:" + "2" * 64,
            }
        ],
    }
)


def _data_stack(stage: str, uri: str) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ServeRepositoryUri": {"Value": uri}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=f"{stage}-Data", TemplateBody=json.dumps(template)
    )


@mock_aws
def test_target_repository_comes_from_the_stage_data_stack_outputs() -> None:
    _data_stack("Staging", "123456789012.dkr.ecr.us-east-1.amazonaws.com/staging-serve")
    cfn = boto3.client("cloudformation", region_name=REGION)
    assert target_repository_uri(cfn, "Staging", "serve").endswith("/staging-serve")


@mock_aws
def test_undeployed_stage_is_reported_with_its_stack_name() -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    with pytest.raises(OperatorError, match="stack Prod-Data"):
        target_repository_uri(cfn, "Prod", "serve")


@mock_aws
def test_dry_run_pins_the_source_digest_in_the_target_repository() -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    repo = ecr.create_repository(repositoryName="cdk-assets")["repository"]["repositoryUri"]
    ecr.put_image(repositoryName="cdk-assets", imageManifest=MANIFEST, imageTag="abc")
    (source,) = ecr.describe_images(repositoryName="cdk-assets")["imageDetails"]
    digest = source["imageDigest"]
    pinned = promote(
        ecr, ecr, ImageRef.parse(f"{repo}:abc", what="source"), f"{repo[:-10]}staging-serve", dry_run=True
    )
    assert pinned == f"{repo[:-10]}staging-serve@{digest}"


def test_malformed_source_uri_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser, before any AWS call
        main(["--image", "serve", "--source", "serve:latest", "--to-stage", "Staging", "--region", REGION])
    assert exit_info.value.code == 2
    assert "argument --source: expected" in capsys.readouterr().err
