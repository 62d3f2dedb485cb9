"""The release gates, as pure cores over AWS clients (moto and botocore Stubber test them): the preflight before a
stage deploys a release, and the verification after. ``scripts/release/gates.py`` wires them to the command line and to
the accounts; the pipeline (infra/stacks/pipeline.py) runs them as CodeBuild steps.

Preflight (exit 3 when any check fails): every release image exists and the stage's account may pull it
(scripts/lib/image_access.py); the model package is Approved and is the release's model data; its
quality metric meets the stage's bar; the model object exists with the release's sha256; the model ships the
precision the stage's endpoint asks for (fp32/int8); the stage has instance
quota for twice its maximum capacity (blue/green runs two fleets at once); the endpoint is not already changing.

Verify: the endpoint checks (scripts/lib/endpoint_checks.py) against the release (stack, silent rollback, image digest, model data,
instance type, data capture, model version in the answer), the stage's recorded release id, then a bounded
load-test smoke (every request must answer 200).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from infra.config import StageConfig
from infra.release_record import QUALITY_METRIC, Release, ReleaseError
from infra.stack_outputs import ServingOutputs
from infra.stage_release import serve_variant
from scripts.lib.aws import outputs_of
from scripts.lib.capacity_checks import endpoint_instances_needed, endpoint_quota_name, quota_value
from scripts.lib.endpoint_checks import Expectation, Report, invoke_sample, verify
from scripts.lib.image_access import check_pull_access

# An endpoint in one of these states is changing: a deploy now would fail or race a rollback.
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
_CHUNK = 8 * 1024 * 1024


def sha256_of_object(s3: Any, bucket: str, key: str) -> str:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    while chunk := body.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _model_package(registry: Any, package_arn: str) -> tuple[Any, Any]:
    """(the model package, its first inference container or None), through the SageMaker Python SDK.

    ``registry`` is a boto3 Session that can describe the package (the registry's account, or a principal its
    model package group policy lets in)."""
    from sagemaker.core.resources import ModelPackage  # operator extra; never in the Lambdas or images

    package = ModelPackage.get(package_arn, session=registry, region=package_arn.split(":")[3])
    assert package is not None
    containers = package.inference_specification.containers if package.inference_specification else []
    return package, containers[0] if containers else None


def package_image(registry: Any, package_arn: str) -> str:
    """The serve image a model package was registered with (the registrar records the stage's serve image)."""
    _, container = _model_package(registry, package_arn)
    return str(container.image) if container else ""


def package_facts(registry: Any, package_arn: str) -> tuple[str, str, dict[str, str]]:
    """(approval status, model data URL, customer metadata) of a model package."""
    package, container = _model_package(registry, package_arn)
    url = str(container.model_data_url) if container else ""
    metadata = package.customer_metadata_properties
    return str(package.model_approval_status), url, dict(metadata) if isinstance(metadata, dict) else {}


def package_approval(registry: Any, package_arn: str) -> tuple[str, object]:
    """(ModelApprovalStatus, ApprovalDescription) of a model package (the SDK's Unassigned() when none)."""
    package, _ = _model_package(registry, package_arn)
    return str(package.model_approval_status), package.approval_description


def _quality(metadata: dict[str, str], release: Release) -> tuple[float, str]:
    recorded = metadata.get(f"metric:{QUALITY_METRIC}")
    if recorded is not None:
        return float(recorded), "the registry"
    return release.model.quality, "the release record"


def preflight(
    release: Release,
    config: StageConfig,
    *,
    registry: Any,
    s3: Any,
    cloudformation: Any,
    sagemaker: Any,
    service_quotas: Any,
    ecr: Any,
    stage_account: str | None = None,
    replay_report: Path | None = None,
) -> Report:
    """Can ``config``'s stage deploy ``release`` now? ``registry``: a boto3 Session for the model registry; ``s3``
    and ``ecr``: clients that read the model store and the registry's repositories; the others: clients in the
    stage's account, ``stage_account`` (default: the config's). Then the evidence (scripts/release/evidence.py):
    the champion comparison, gating a ``worse`` verdict no person approved, and the replay report
    ``replay_report`` (informational)."""
    report = Report()
    _images_exist(report, release, ecr)
    account = stage_account or config.account
    if account is None:
        report.add("pull access", False, f"{config.name}: field 'account' unset and no stage account given")
    else:
        check_pull_access(report, release, ecr, stage=config.name, account=account)
    model = release.model
    status, url, metadata = package_facts(registry, model.package_arn)
    version_is = f"{model.package_group} v{model.package_version} is {status}"
    report.compare(
        "package approved",
        status,
        "Approved",
        same=version_is,
        differs=f"{version_is}, expected Approved (python -m scripts.release approve ...)",
    )
    report.compare(
        "package model data",
        url,
        model.model_data_uri,
        same=url,
        differs=f"the package serves {url}, the release says {model.model_data_uri}",
    )
    score, source = _quality(metadata, release)
    bar = config.training.quality_bar_map50_95
    report.add(
        "quality bar",
        score >= bar,
        f"{QUALITY_METRIC} {score:.4f} (from {source}) {'>=' if score >= bar else '<'} {config.name}'s bar {bar:.4f}",
    )
    try:
        actual = sha256_of_object(s3, model.bucket, model.key)
    except s3.exceptions.NoSuchKey:
        report.add("model object", False, f"{model.model_data_uri} does not exist")
    else:
        report.compare(
            "model object",
            actual,
            model.sha256,
            same=f"sha256 {actual[:12]}... matches",
            differs=f"sha256 {actual} differs from the release's {model.sha256}",
        )
    _precision(report, release, config)
    _quota(report, config, service_quotas)
    _endpoint_idle(report, config, cloudformation, sagemaker)
    from scripts.release.evidence import comparison_check, replay_check

    comparison_check(report, release, s3=s3, approval=lambda: package_approval(registry, model.package_arn))
    replay_check(report, release, replay_report)
    return report


def _precision(report: Report, release: Release, config: StageConfig) -> None:
    """The stage's endpoint.precision is a graph the model ships (the record's precisions were read from model.json
    inside the model.tar.gz whose sha256 the 'model object' check compares)."""
    wanted = config.endpoint.precision
    try:
        release.model.check_precision(wanted, stage=config.name, int8_caps=config.int8_caps)
    except ReleaseError as exc:
        report.add("model precision", False, str(exc))
    else:
        report.add(
            "model precision",
            True,
            f"{config.name} serves {wanted}; the model ships {list(release.model.precisions)}",
        )


def _images_exist(report: Report, release: Release, ecr: Any) -> None:
    """Every image of the release exists in the registry by digest (a release that names an image nobody pushed,
    e.g. a placeholder, fails here instead of in a deploy). ECR DescribeImages with ``registryId``, Amazon ECR API
    Reference, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html (read 2026-12-05)."""
    for field, image in release.image_fields().items():
        try:
            ecr.describe_images(
                registryId=image.account,
                repositoryName=image.repository_name,
                imageIds=[{"imageDigest": image.digest}],
            )
        except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException) as exc:
            code = exc.response["Error"]["Code"]
            report.add(f"image {field}", False, f"{image.uri} does not exist ({code})")
        else:
            report.add(f"image {field}", True, f"{image.digest[:19]}... in {image.repository_name}")


def _quota(report: Report, config: StageConfig, service_quotas: Any) -> None:
    endpoint = config.endpoint
    name = endpoint_quota_name(endpoint.instance_type)
    needed = endpoint_instances_needed(endpoint.autoscaling.max_capacity)
    try:
        value, source = quota_value(service_quotas, name)
    except (
        ClientError
    ) as exc:  # one unreadable quota is this check's answer, not the end of every other check
        error = exc.response.get("Error", {})
        report.add(
            "instance quota",
            False,
            f"{name}: need {needed}, could not read it ({error.get('Code')}: {error.get('Message')}); check it in "
            "the Service Quotas console",
        )
        return
    report.add(
        "instance quota",
        value is not None and value >= needed,
        f"{name}: need {needed} (2 x max capacity {endpoint.autoscaling.max_capacity}, blue/green), have "
        + ("none (request it in Service Quotas)" if value is None else f"{value:g}")
        + (" (AWS default: none applied)" if source == "default" else ""),
    )


def _endpoint_idle(report: Report, config: StageConfig, cloudformation: Any, sagemaker: Any) -> None:
    stack = f"{config.name}-Serving"
    try:
        [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            report.add("endpoint idle", True, f"{stack} is not deployed yet (first deploy)")
            return
        raise
    name = outputs_of(described).get(ServingOutputs.ENDPOINT_NAME)
    if name is None:
        report.add("endpoint idle", True, f"{stack} has no endpoint yet")
        return
    status = sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
    report.add(
        "endpoint idle",
        status not in BUSY,
        f"{name} is {status}"
        + (": wait until the running change (or its rollback) ends" if status in BUSY else ""),
    )


def expectation(release: Release, config: StageConfig) -> Expectation:
    """What the stage's endpoint must run for ``release``."""
    endpoint = config.endpoint
    return Expectation(
        image=release.serve_image(serve_variant(endpoint.instance_type)).uri,
        model_data_url=release.model.model_data_uri,
        instance_type=endpoint.instance_type,
        data_capture_percent=endpoint.data_capture_percent,
        model_version=release.model.card_version,
    )


def verify_release(
    release: Release,
    config: StageConfig,
    *,
    cloudformation: Any,
    sagemaker: Any,
    runtime: Any,
    image: bytes,
    load_requests: int = 0,
    load_concurrency: int = 1,
    load_seconds: float = 300,
    ssm: Any = None,
    protected: Sequence[str] = (),
) -> Report:
    """After a deploy: the endpoint runs ``release`` as configured, answers, and survives a short load. With
    ``ssm``, a pass (only a pass) is recorded in the stage's history (``record_release``)."""
    stack = f"{config.name}-Serving"
    report = verify(
        stack,
        cloudformation=cloudformation,
        sagemaker=sagemaker,
        runtime=runtime,
        image=image,
        expect=expectation(release, config),
    )
    if not report.checks or not report.checks[0].ok:
        return report
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = outputs_of(described)
    recorded = outputs.get(ServingOutputs.RELEASE_ID)
    deployed = f"{stack} deployed {recorded}"
    report.compare(
        "release id",
        recorded,
        release.release_id,
        same=deployed,
        differs=f"{deployed}, expected {release.release_id}",
    )
    if load_requests and report.ok:
        _load_smoke(
            report,
            runtime,
            outputs[ServingOutputs.ENDPOINT_NAME],
            image,
            load_requests,
            load_concurrency,
            load_seconds,
        )
    for name in protected:
        _termination_protection(report, cloudformation, name)
    if ssm is not None and report.ok:
        record_release(ssm, config.name, release.release_id)
    return report


# CDK Pipelines deploys with CloudFormation change sets and ignores a stack's termination protection
# (https://github.com/aws/aws-cdk/issues/17871): the pipeline applies it after the deploy (protect_stacks) and verify
# checks it. UpdateTerminationProtection, AWS CloudFormation API Reference,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateTerminationProtection.html (read
# 2026-12-05).
def protect_stacks(cloudformation: Any, names: Sequence[str]) -> None:
    """Turn termination protection on for each stack (idempotent)."""
    for name in names:
        cloudformation.update_termination_protection(EnableTerminationProtection=True, StackName=name)


def _termination_protection(report: Report, cloudformation: Any, name: str) -> None:
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    on = bool(stack.get("EnableTerminationProtection"))
    report.add("termination protection", on, f"{name} is {'protected' if on else 'NOT protected'}")


def record_release(ssm: Any, stage: str, release_id: str) -> None:
    """Append ``release_id`` to the stage's history: the SSM parameter whose versions ``release history`` and
    ``release rollback`` read. Written by verify once every check passed, never by a stack: a deploy that failed or
    was rolled back by SageMaker is not history. Parameter Store keeps the 100 most recent versions ("Working with
    parameter versions in Parameter Store",
    https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html, read 2026-12-05)."""
    from infra.constructs.training_names import release_parameter_name

    ssm.put_parameter(
        Name=release_parameter_name(stage),
        Value=release_id,
        Type="String",
        Overwrite=True,
        Description=f"{stage}: the release the stage runs, written after verify passed (history: its versions)",
    )


def _load_smoke(
    report: Report, runtime: Any, endpoint: str, image: bytes, requests: int, concurrency: int, seconds: float
) -> None:
    """A bounded closed-loop load (scripts/lib/load.py, the load test's stepper) through the same runtime client."""
    from scripts.lib.load import run_step

    def make() -> Any:
        def invoke() -> int:
            try:
                invoke_sample(runtime, endpoint, image)
            except runtime.exceptions.ClientError as exc:  # the status SageMaker or the container answered
                meta = exc.response.get("ResponseMetadata", {})
                return int(exc.response.get("OriginalStatusCode") or meta.get("HTTPStatusCode") or 599)
            return 200  # boto3 raises for every non-2xx answer

        return invoke

    step = run_step(make, concurrency, requests, seconds)
    codes = f" {step.error_codes}" if step.error_codes else ""
    report.add(
        "load smoke",
        step.errors == 0 and step.requests >= requests,
        f"{step.requests} requests at concurrency {concurrency}: {step.errors} errors{codes}, "
        f"p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, {step.rps} rps",
    )
