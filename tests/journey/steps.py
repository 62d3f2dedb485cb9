"""What AWS services do on a role's behalf in the journey, done here as that role (the project's code runs for real;
only the service's own part - pulling an image, staging a channel, packing /opt/ml/model - is done by these helpers,
each of its AWS calls checked by the policy check like any other)."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from tests.journey.environment import environment
from tests.journey.loader import Role
from tests.journey.world import World, s3_uri_parts

_ASSET = re.compile(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.(?:\$\{AWS::URLSuffix\}|amazonaws\.com)/"
                    r"(cdk-[a-z0-9]+-container-assets-\d{12}-[a-z0-9-]+):([0-9a-f]{64})")  # fmt: skip


def image_manifest(seed: str) -> str:
    """A Docker image manifest (schema 2) unique to ``seed``: ECR derives the image digest from it."""
    import hashlib

    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": digest,
            },
            "layers": [],
        }
    )


def publish_assets(world: World, assembly: Path, account: str) -> list[str]:
    """What ``cdk deploy`` does before the stacks: build and push every Docker image asset of the assembly into the
    bootstrap's container-assets repository (created here as ``cdk bootstrap`` would). Returns the image URIs."""
    ecr = world.cloud.admin(account).client("ecr")
    uris = []
    text = "\n".join(p.read_text() for p in assembly.glob("assembly-*/*.template.json"))
    for acct, region, repo, tag in sorted(set(_ASSET.findall(text))):
        if acct != account:
            continue
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=repo)
        with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
            ecr.put_image(repositoryName=repo, imageManifest=image_manifest(tag), imageTag=tag)
        uris.append(f"{acct}.dkr.ecr.{region}.amazonaws.com/{repo}:{tag}")
    return uris


def repository_arn(image_uri: str) -> str:
    """arn:aws:ecr:<region>:<account>:repository/<name> of ``<account>.dkr.ecr.<region>.amazonaws.com/<name>[:@]..``"""
    host, _, rest = image_uri.partition("/")
    account, _, _, region, *_ = host.split(".")
    name = re.split(r"[@:]", rest, maxsplit=1)[0]
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def pull_image(world: World, role: Role, image_uri: str) -> None:
    """SageMaker pulls the job's or model's image with the execution role's permissions
    (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html: ecr:BatchCheckLayerAvailability,
    ecr:GetDownloadUrlForLayer, ecr:BatchGetImage, ecr:GetAuthorizationToken), and the image must exist."""
    check = world.check
    check.require(role, "ecr:GetAuthorizationToken", "*")
    arn = repository_arn(image_uri)
    for action in ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"):
        check.require(role, action, arn)
    host, _, rest = image_uri.partition("/")
    name, reference = rest.split("@", 1) if "@" in rest else rest.rsplit(":", 1)
    image_id = {"imageDigest": reference} if reference.startswith("sha256:") else {"imageTag": reference}
    owner = host.split(".")[0]
    ecr = world.cloud.admin(owner).client("ecr")
    try:
        found = ecr.batch_get_image(repositoryName=name, registryId=owner, imageIds=[image_id])
    except ClientError as exc:
        raise AssertionError(
            f"step '{check.step}': role {role.label} ({role.arn}) ecr:BatchGetImage on {arn}: {image_uri}: "
            f"{exc.response['Error']['Message']}"
        ) from None
    assert found["images"], (
        f"step '{check.step}': role {role.label} ({role.arn}) ecr:BatchGetImage on {arn}: {image_uri} is not in "
        f"the registry ({found.get('failures')})"
    )


def download_prefix(world: World, uri: str, target: Path) -> list[Path]:
    """A File-mode S3Prefix input as SageMaker stages it (with the job's role): every object under ``uri``."""
    import boto3

    s3 = boto3.client("s3")
    bucket, prefix = s3_uri_parts(uri)
    files = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            rel = item["Key"][len(prefix) :].lstrip("/") or Path(item["Key"]).name
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            files.append(path)
    assert files, f"step '{world.check.step}': input {uri} is empty"
    return files


def upload(path: Path, uri: str) -> None:
    import boto3

    bucket, key = s3_uri_parts(uri)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def run_processing_job(world: World, description: dict[str, Any], root: Path) -> int:
    """The Processing job SageMaker would run from ``description`` (DescribeProcessingJob), run here as its role:
    pull the image, stage the inputs, run the container's entrypoint (app.dataprep.processing) with its
    arguments. Returns the entrypoint's exit status."""
    from app.dataprep.processing import entrypoint

    role = world.cloud.roles[description["RoleArn"]]
    with world.check.as_role("Processing job (dataprep image)", role):
        pull_image(world, role, description["AppSpecification"]["ImageUri"])
        for item in description.get("ProcessingInputs", []):  # labels are read by the job itself (--labels)
            s3_input = item["S3Input"]
            local = root / Path(s3_input["LocalPath"]).relative_to("/opt/ml/processing")
            download_prefix(world, s3_input["S3Uri"], local)
        paths = {
            "DATAPREP_PROCESSING_ROOT": str(root),
            "DATAPREP_RESOURCE_CONFIG": str(root / "no-resourceconfig.json"),
        }
        with environment(paths):
            return entrypoint(list(description["AppSpecification"].get("ContainerArguments", [])))


def record_final_metrics(world: World, job: dict[str, Any], log: str) -> dict[str, float]:
    """What SageMaker does with a training job's log: each MetricDefinition's regex applied to it, the last value
    found becoming the job's final metric (FinalMetricDataList;
    https://docs.aws.amazon.com/sagemaker/latest/dg/training-metrics.html). moto runs no job, so the values from
    the real container log are set on moto's job."""
    from moto.sagemaker.models import sagemaker_backends

    values: dict[str, float] = {}
    request = world.check.training_requests[job["TrainingJobName"]]
    for definition in request["AlgorithmSpecification"].get("MetricDefinitions", []):
        found = re.findall(definition["Regex"], log)
        if found:
            last = found[-1]
            values[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    account, region = job["TrainingJobArn"].split(":")[4], job["TrainingJobArn"].split(":")[3]
    fake = sagemaker_backends[account][region].training_jobs[job["TrainingJobName"]]
    fake.final_metric_data_list = [
        {"MetricName": k, "Value": v, "Timestamp": fake.creation_time} for k, v in values.items()
    ]
    return values
