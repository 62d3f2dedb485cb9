"""scripts/promote_image.py against moto: the target repository is found through the stage's Data stack outputs and
the promoted pin keeps the source digest. (moto cannot serve layer downloads, so the blob copy itself is only
exercised against real ECR.)"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from infra.release_record import parse_release
from infra.stage_release import for_stage, serve_variant
from scripts.lib.aws import stage_config
from scripts.lib.cli import OperatorError
from scripts.promote_image import ImageRef, main, promote, target_repository_uri
from tests.fixtures.release_records import operator_release_doc

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


@mock_aws
def test_printed_setting_is_the_release_field_synth_deploys(capsys: pytest.CaptureFixture[str]) -> None:
    """issue 26: the printed line was a stage-config pin (images.serve = "<uri>") that synth refuses while a release
    is current; it is the release record's field, and the record with it validates and serves Staging's variant."""
    ecr = boto3.client("ecr", region_name=REGION)
    source = ecr.create_repository(repositoryName="cdk-assets")["repository"]["repositoryUri"]
    ecr.put_image(repositoryName="cdk-assets", imageManifest=MANIFEST, imageTag="abc")
    target = source.replace("cdk-assets", "staging-serve")
    _data_stack("Staging", target)

    assert main(["--image", "serve", "--source", f"{source}:abc", "--to-stage", "Staging", "--dry-run"]) == 0
    stage, _, setting = capsys.readouterr().out.strip().partition(": ")
    field, _, value = setting.partition(" = ")
    doc = operator_release_doc()  # a release in moto's account and region, as `release create` writes it
    *parents, leaf = field.split(".")
    node = doc
    for name in parents:
        node = node[name]
    node[leaf] = json.loads(value)
    release = parse_release(json.dumps(doc), source="printed setting")

    config = stage_config(stage)
    assert (
        for_stage(release, config).serve
        == release.serve_image(serve_variant(config.endpoint.instance_type)).uri
    )
    assert release.serve_image(serve_variant(config.endpoint.instance_type)).repository == target
