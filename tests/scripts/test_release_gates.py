"""The release gates against moto (registry, model store, stacks) and botocore Stubber where moto lacks the API
(Service Quotas; SageMaker endpoints on ml.c6i/ml.g5 instance types; sagemaker-runtime answers)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from app.contracts.invocation import is_synthetic
from infra.paths import EXAMPLE_RELEASES_DIR
from infra.release_record import Release, load_current
from scripts.lib.capacity_checks import endpoint_quota_name
from scripts.lib.endpoint_checks import sample_jpeg
from scripts.release.checks import expectation, preflight, protect_stacks, verify_release
from tests.infra.synthesized import make_stage_config
from tests.scripts.aws_fakes import inference_ids_sent, runtime_answering, stack_with_outputs

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's: the registry's account


def model_tar_gz(card: dict[str, Any]) -> bytes:
    """A model.tar.gz holding ``card`` as its model.json (what the preflight's comparison block reads)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("model.onnx", b"graph"), ("model.json", json.dumps(card).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MODEL_BYTES = model_tar_gz({"name": "yolo-detector", "version": "v1"})  # trained before comparisons existed
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture
def registry() -> Iterator[tuple[boto3.Session, Release]]:
    """moto: an Approved model package whose model data is an object with a known sha256; the release names it."""
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3 = session.client("s3")
        s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="models", Key="training-output/job/output/model.tar.gz", Body=MODEL_BYTES)
        sm = session.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName="yolo-detector-dev-1a2b3c4d")
        url = "s3://models/training-output/job/output/model.tar.gz"
        arn = sm.create_model_package(
            ModelPackageGroupName="yolo-detector-dev-1a2b3c4d",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "x", "ModelDataUrl": url}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"metric:val:mAP50-95": "0.64"},
        )["ModelPackageArn"]
        doc = load_current(EXAMPLE_RELEASES_DIR).model_dump(mode="json")
        doc["model"].update(
            package_arn=arn,
            model_data_uri=url,
            sha256=hashlib.sha256(MODEL_BYTES).hexdigest(),
            kms_key_arn=None,
        )
        ecr = session.client("ecr")
        doc["images"] = {
            "dataprep": pushed(ecr, "dev-data-dataprep", "dataprep"),
            "train": pushed(ecr, "dev-data-train", "train"),
            "serve": {v: pushed(ecr, "dev-data-serve", f"serve-{v}") for v in ("cpu", "gpu")},
        }
        yield session, Release.model_validate(doc)


def pushed(ecr: Any, repository: str, content: str) -> dict[str, str]:
    """An image pushed to moto ECR (repository created on first use): the release's {repository, digest}."""
    try:
        uri = ecr.create_repository(repositoryName=repository)["repository"]["repositoryUri"]
    except ecr.exceptions.RepositoryAlreadyExistsException:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": content,
            },
            "layers": [],
        }
    )
    image = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=content)["image"]
    return {"repository": uri, "digest": image["imageId"]["imageDigest"]}


def quotas(value: float | None, instance_type: str, *, default: float | None = None) -> Any:
    """Service Quotas answering ``value`` as applied (None: not listed, as for a quota never raised) and
    ``default`` as the AWS default."""
    client = boto3.client("service-quotas", region_name=REGION)
    stubber = Stubber(client)
    name = endpoint_quota_name(instance_type)
    listed = [] if value is None else [{"QuotaName": name, "Value": value}]
    stubber.add_response("list_service_quotas", {"Quotas": listed}, {"ServiceCode": "sagemaker"})
    if value is None:
        defaults = [] if default is None else [{"QuotaName": name, "Value": default}]
        stubber.add_response(
            "list_aws_default_service_quotas", {"Quotas": defaults}, {"ServiceCode": "sagemaker"}
        )
    stubber.activate()
    return client


def run_preflight(
    session: boto3.Session,
    release: Release,
    *,
    stage: str = "Staging",
    quota: float | None = 100,
    default_quota: float | None = None,
    sagemaker: Any = None,
    service_quotas: Any = None,
    stage_account: str = ACCOUNT,
    replay_report: Any = None,
    **overrides: Any,
) -> Any:
    config = make_stage_config(stage, **overrides)
    return preflight(
        release,
        config,
        registry=session,
        s3=session.client("s3"),
        cloudformation=session.client("cloudformation"),
        sagemaker=sagemaker or session.client("sagemaker"),
        service_quotas=service_quotas or quotas(quota, config.endpoint.instance_type, default=default_quota),
        ecr=session.client("ecr"),
        stage_account=stage_account,
        replay_report=replay_report,
    )


def failed(report: Any) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if not c.ok}


def test_preflight_passes_for_an_approved_package_with_its_object_and_quota(registry: Any) -> None:
    report = run_preflight(*registry)
    assert report.ok, report.render()
    assert [c.name for c in report.checks] == [
        *(f"image {field}" for field in registry[1].image_fields()),
        *(f"pull {name}" for name in ("dev-data-dataprep", "dev-data-serve", "dev-data-train")),
        "package approved",
        "package model data",
        "quality bar",
        "model object",
        "model precision",
        "instance quota",
        "endpoint idle",
        "comparison",
        "replay",
    ]
    assert "first deploy" in report.checks[-3].detail


def test_preflight_refuses_a_release_whose_image_does_not_exist(registry: Any) -> None:
    """Issue 22: the GPU serve image Staging and Prod run was never built (the release copied the example's
    placeholder digest); preflight never checked that a release's images exist."""
    session, release = registry
    doc = release.model_dump(mode="json")
    doc["images"]["serve"]["gpu"]["digest"] = "sha256:" + "4" * 64
    report = run_preflight(session, Release.model_validate(doc))
    gpu = doc["images"]["serve"]["gpu"]
    assert failed(report) == {
        "image images.serve.gpu": f"{gpu['repository']}@{gpu['digest']} does not exist (ImageNotFoundException)"
    }


def test_preflight_passes_every_image_of_the_release(registry: Any) -> None:
    session, release = registry
    checks = [c.name for c in run_preflight(session, release).checks if c.name.startswith("image ")]
    assert checks == [f"image {field}" for field in release.image_fields()]


STAGING_ACCOUNT, PROD_ACCOUNT = "222222222222", "333333333333"


def pull_policy(*accounts: str, actions: Any = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")) -> str:
    """A repository policy like infra/stacks/stateful.py's ReleaseReadersPull for ``accounts``."""
    statement = {
        "Sid": "ReleaseReadersPull",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
        "Action": list(actions),
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def set_policies(session: boto3.Session, release: Release, policy: str) -> None:
    ecr = session.client("ecr")
    for name in {image.repository_name for image in release.image_fields().values()}:
        ecr.set_repository_policy(repositoryName=name, policyText=policy)


def test_preflight_refuses_a_stage_account_the_repository_policy_leaves_out(registry: Any) -> None:
    """Issue 22: nothing checked at run time that a stage may pull the release's images; a registry whose policy
    misses a stage failed only in the deploy (the endpoint's image pull)."""
    session, release = registry
    set_policies(session, release, pull_policy(STAGING_ACCOUNT))
    report = run_preflight(session, release, stage="Prod", quota=100, stage_account=PROD_ACCOUNT)
    repository = release.images.serve["gpu"].repository
    why = "no statement of the repository policy allows it"
    assert failed(report)["pull dev-data-serve"] == (
        f"{repository}: principal arn:aws:iam::{PROD_ACCOUNT}:root (Prod) may not pull: "
        f"ecr:BatchGetImage: {why}; ecr:GetDownloadUrlForLayer: {why}"
    )
    assert {name for name in failed(report)} == {
        "pull dev-data-dataprep",
        "pull dev-data-serve",
        "pull dev-data-train",
    }


def test_preflight_passes_a_stage_account_the_repository_policy_lets_pull(registry: Any) -> None:
    session, release = registry
    set_policies(session, release, pull_policy(STAGING_ACCOUNT, PROD_ACCOUNT))
    report = run_preflight(session, release, stage_account=STAGING_ACCOUNT)
    assert report.ok, report.render()
    [serve] = [c for c in report.checks if c.name == "pull dev-data-serve"]
    assert serve.detail == f"the repository policy lets arn:aws:iam::{STAGING_ACCOUNT}:root (Staging) pull"


def test_preflight_names_the_one_missing_pull_action(registry: Any) -> None:
    session, release = registry
    set_policies(session, release, pull_policy(STAGING_ACCOUNT, actions=["ecr:BatchGetImage"]))
    detail = failed(run_preflight(session, release, stage_account=STAGING_ACCOUNT))["pull dev-data-train"]
    assert detail.endswith(
        f"principal arn:aws:iam::{STAGING_ACCOUNT}:root (Staging) may not pull: ecr:GetDownloadUrlForLayer: "
        "no statement of the repository policy allows it"
    )


def test_preflight_refuses_another_account_when_the_repository_has_no_policy(registry: Any) -> None:
    session, release = registry
    detail = failed(run_preflight(session, release, stage_account=STAGING_ACCOUNT))["pull dev-data-dataprep"]
    assert detail.endswith(
        "ecr:BatchGetImage: the repository has no policy; ecr:GetDownloadUrlForLayer: the repository has no policy"
    )


def test_preflight_refuses_the_registry_account_when_the_repository_policy_denies_it(registry: Any) -> None:
    session, release = registry
    deny = json.loads(pull_policy(ACCOUNT, actions=["ecr:*"]))
    deny["Statement"][0].update(Sid="NoPulls", Effect="Deny")
    set_policies(session, release, json.dumps(deny))
    detail = failed(run_preflight(session, release))["pull dev-data-serve"]
    assert detail.endswith(
        "ecr:BatchGetImage: denied by statement 'NoPulls'; ecr:GetDownloadUrlForLayer: denied by statement 'NoPulls'"
    )


def test_preflight_refuses_a_package_that_is_not_approved(registry: Any) -> None:
    session, release = registry
    session.client("sagemaker").update_model_package(
        ModelPackageArn=release.model.package_arn, ModelApprovalStatus="Rejected"
    )
    assert failed(run_preflight(session, release)) == {
        "package approved": "yolo-detector-dev-1a2b3c4d v1 is Rejected, expected Approved (python -m scripts.release approve ...)"
    }


def test_preflight_refuses_a_model_below_the_stage_bar(registry: Any) -> None:
    session, release = registry
    report = run_preflight(session, release, stage="Prod", quota=100)  # Prod's bar 0.6 < 0.64 passes ...
    assert "quality bar" not in failed(report)
    sm = session.client("sagemaker")
    sm.update_model_package(
        ModelPackageArn=release.model.package_arn, CustomerMetadataProperties={"metric:val:mAP50-95": "0.55"}
    )
    assert failed(run_preflight(session, release, stage="Prod"))["quality bar"] == (
        "val:mAP50-95 0.5500 (from the registry) < Prod's bar 0.6000"
    )


def test_preflight_refuses_a_model_object_with_another_checksum(registry: Any) -> None:
    session, release = registry
    session.client("s3").put_object(Bucket="models", Key=release.model.key, Body=b"someone replaced it")
    detail = failed(run_preflight(session, release))["model object"]
    assert detail.startswith("sha256 ") and f"differs from the release's {release.model.sha256}" in detail


def test_preflight_refuses_a_missing_model_object(registry: Any) -> None:
    session, release = registry
    session.client("s3").delete_object(Bucket="models", Key=release.model.key)
    assert failed(run_preflight(session, release)) == {
        "model object": f"{release.model.model_data_uri} does not exist",
        "comparison": f"{release.model.model_data_uri}: does not exist, so its model.json cannot be read",
    }


@pytest.mark.parametrize(("quota", "have"), [(7, "7"), (None, "none (request it in Service Quotas)")])
def test_preflight_needs_quota_for_two_fleets_at_max_capacity(
    registry: Any, quota: float | None, have: str
) -> None:
    detail = failed(run_preflight(*registry, stage="Prod", quota=quota))["instance quota"]
    assert detail == f"ml.g5.xlarge for endpoint usage: need 16 (2 x max capacity 8, blue/green), have {have}"


def test_preflight_reads_the_default_quota_of_a_fresh_account(registry: Any) -> None:
    """Issue 22: ListServiceQuotas does not retrieve a quota with no applied value, so a fresh account whose
    default covers the need got a false FAIL."""
    report = run_preflight(*registry, stage="Prod", quota=None, default_quota=20)
    [check] = [c for c in report.checks if c.name == "instance quota"]
    assert check.ok, check.detail
    assert check.detail.endswith("have 20 (AWS default: none applied)")


def test_an_unreadable_quota_fails_its_own_check_and_the_other_checks_still_answer(registry: Any) -> None:
    """Found by the journey: one Service Quotas error (here: the service is not offered in the region) ended the
    whole preflight with one error line and no report."""
    session, release = registry
    client = boto3.client("service-quotas", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
    stubber.add_client_error(
        "list_aws_default_service_quotas",
        "NoSuchResourceException",
        "This service is not available in the current Region.",
    )
    stubber.activate()
    report = run_preflight(session, release, service_quotas=client)
    assert failed(report) == {
        "instance quota": "ml.g5.xlarge for endpoint usage: need 4, could not read it (NoSuchResourceException: "
        "This service is not available in the current Region.); check it in the Service Quotas console"
    }
    assert [c.name for c in report.checks][-3:] == ["endpoint idle", "comparison", "replay"]


def test_preflight_refuses_while_the_endpoint_is_updating(registry: Any) -> None:
    session, release = registry
    stack_with_outputs(session.client("cloudformation"), "Staging-Serving", {"EndpointName": "endpoint-1"})
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(sagemaker)
    stubber.add_response(
        "describe_endpoint",
        {
            "EndpointName": "endpoint-1",
            "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/endpoint-1",
            "EndpointStatus": "Updating",
            "CreationTime": "2026-11-30T00:00:00Z",
            "LastModifiedTime": "2026-11-30T00:00:00Z",
        },
        {"EndpointName": "endpoint-1"},
    )
    with stubber:
        report = run_preflight(session, release, sagemaker=sagemaker)
    assert failed(report) == {
        "endpoint idle": "endpoint-1 is Updating: wait until the running change (or its rollback) ends"
    }


# ------------------------------------------------------------------------------------------------ verify
RELEASE = load_current(EXAMPLE_RELEASES_DIR)
STAGE = make_stage_config("Staging")  # ml.g5.xlarge (moto rejects g5: botocore Stubber), data capture 20%
EXPECT = expectation(RELEASE, STAGE)


def stack(cloudformation: Any, *, release_id: str = RELEASE.release_id, config: str = "cfg-2") -> None:
    outputs = {
        "EndpointName": "endpoint-1",
        "EndpointConfigName": config,
        "VariantName": "g5-xlarge",
        "EndpointStatus": "created",
        "ReleaseId": release_id,
    }
    stack_with_outputs(cloudformation, "Staging-Serving", outputs)


def endpoint_stubs(
    *, image: str = EXPECT.image, capture: int = 20, instance: str = "ml.g5.xlarge", config: str = "cfg-2"
) -> Any:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(sagemaker)
    capture_config = (
        {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": capture,
            "DestinationS3Uri": "s3://a/data-capture",
            "KmsKeyId": "k",
        }
        if capture
        else {
            "EnableCapture": False,
            "CaptureStatus": "Stopped",
            "CurrentSamplingPercentage": 0,
            "DestinationS3Uri": "s3://a/x",
            "KmsKeyId": "k",
        }
    )
    stubber.add_response(
        "describe_endpoint",
        {
            "EndpointName": "endpoint-1",
            "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/endpoint-1",
            "EndpointConfigName": config,
            "EndpointStatus": "InService",
            "CreationTime": "2026-11-30T00:00:00Z",
            "LastModifiedTime": "2026-11-30T00:00:00Z",
            "ProductionVariants": [
                {"VariantName": "g5-xlarge", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2}
            ],
            "DataCaptureConfig": capture_config,
        },
        {"EndpointName": "endpoint-1"},
    )
    stubber.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": config,
            "EndpointConfigArn": f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/{config}",
            "CreationTime": "2026-11-30T00:00:00Z",
            "ProductionVariants": [
                {"VariantName": "g5-xlarge", "ModelName": "model-2", "InstanceType": instance}
            ],
        },
        {"EndpointConfigName": config},
    )
    stubber.add_response(
        "describe_model",
        {
            "ModelName": "model-2",
            "ModelArn": "arn:aws:sagemaker:eu-west-1:123456789012:model/model-2",
            "CreationTime": "2026-11-30T00:00:00Z",
            "PrimaryContainer": {"Image": image, "ModelDataUrl": RELEASE.model.model_data_uri},
        },
        {"ModelName": "model-2"},
    )
    stubber.activate()
    return sagemaker


def runtime(version: str = RELEASE.model.card_version, answers: int = 1) -> Any:
    body = json.dumps(
        {
            "model": {"name": "yolo-detector", "version": version},
            "predictions": [{"image": {"width": 640, "height": 480}, "detections": []}],
        }
    ).encode()
    return runtime_answering(body, region=REGION, times=answers)


@pytest.fixture
def cloudformation() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def run_verify(cloudformation: Any, sagemaker: Any, runtime_client: Any, **kwargs: Any) -> Any:
    return verify_release(
        RELEASE,
        STAGE,
        cloudformation=cloudformation,
        sagemaker=sagemaker,
        runtime=runtime_client,
        image=sample_jpeg(),
        **kwargs,
    )


def test_verify_passes_when_the_endpoint_runs_the_release_as_configured(cloudformation: Any) -> None:
    stack(cloudformation)
    report = run_verify(cloudformation, endpoint_stubs(), runtime(answers=1 + 1 + 5), load_requests=5)
    assert report.ok, report.render()
    names = [c.name for c in report.checks]
    assert names == [
        "stack",
        "endpoint status",
        "endpoint config",
        "variant",
        "image digest",
        "model data",
        "instance type",
        "data capture",
        "invocation",
        "model version",
        "release id",
        "load smoke",
    ]
    assert report.checks[-1].detail.startswith("5 requests at concurrency 1: 0 errors")


def test_verify_marks_every_request_it_sends_as_synthetic(cloudformation: Any) -> None:
    """release compare replays the stage's data capture without the platform's own requests: verify's invocation
    and its load smoke carry an InferenceId starting with synthetic- (SageMaker adds it to the captured record)."""
    stack(cloudformation)
    client = runtime(answers=1 + 1 + 3)
    sent: list[str | None] = []
    client.meta.events.register(
        "provide-client-params.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: sent.append(params.get("InferenceId")),
    )
    assert run_verify(cloudformation, endpoint_stubs(), client, load_requests=3).ok
    assert len(sent) == 5 and all(is_synthetic(inference_id) for inference_id in sent), sent


def history(ssm: Any) -> list[str]:
    try:
        rows = ssm.get_parameter_history(Name="/yolo-detector/staging/release-id")["Parameters"]
    except ssm.exceptions.ParameterNotFound:
        return []
    return [row["Value"] for row in rows]


def test_a_passing_verify_is_recorded_in_the_stage_history(cloudformation: Any) -> None:
    """Issue 22: the history was written by the Data stack before Serving deployed, so a failed or rolled-back
    deploy still showed the new release, and rollback picked the wrong one."""
    ssm = boto3.client("ssm", region_name=REGION)
    stack(cloudformation)
    assert run_verify(cloudformation, endpoint_stubs(), runtime(), ssm=ssm).ok
    assert history(ssm) == [RELEASE.release_id]


def test_a_failed_verify_leaves_the_stage_history_alone(cloudformation: Any) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    stack(cloudformation, config="cfg-3")  # a silent rollback
    assert not run_verify(cloudformation, endpoint_stubs(config="cfg-2"), runtime(), ssm=ssm).ok
    assert history(ssm) == []


def test_verify_fails_on_a_silent_rollback(cloudformation: Any) -> None:
    stack(cloudformation, config="cfg-3")  # CloudFormation asked for cfg-3; SageMaker rolled back to cfg-2
    report = run_verify(cloudformation, endpoint_stubs(config="cfg-2"), runtime())
    assert "SILENT ROLLBACK" in failed(report)["endpoint config"]


def test_verify_fails_on_another_image_digest(cloudformation: Any) -> None:
    stack(cloudformation)
    other = EXPECT.image.split("@")[0] + "@sha256:" + "9" * 64
    detail = failed(run_verify(cloudformation, endpoint_stubs(image=other), runtime()))["image digest"]
    assert detail == f"runs {other}, the release says {EXPECT.image}"


def test_verify_compares_actual_data_capture_with_the_config(cloudformation: Any) -> None:
    stack(cloudformation)
    assert failed(run_verify(cloudformation, endpoint_stubs(capture=0), runtime())) == {
        "data capture": "off, the config says 20%"
    }


def test_verify_fails_on_another_instance_type(cloudformation: Any) -> None:
    stack(cloudformation)
    assert failed(run_verify(cloudformation, endpoint_stubs(instance="ml.c5.xlarge"), runtime())) == {
        "instance type": "g5-xlarge on ml.c5.xlarge, the config says ml.g5.xlarge"
    }


def test_verify_fails_when_the_endpoint_answers_with_another_model(cloudformation: Any) -> None:
    stack(cloudformation)
    assert failed(run_verify(cloudformation, endpoint_stubs(), runtime(version="older"))) == {
        "model version": f"answers older, the release says {RELEASE.model.card_version}"
    }


def test_verify_fails_when_the_stage_deployed_another_release(cloudformation: Any) -> None:
    stack(cloudformation, release_id="r-older")
    assert failed(run_verify(cloudformation, endpoint_stubs(), runtime())) == {
        "release id": f"Staging-Serving deployed r-older, expected {RELEASE.release_id}"
    }


def test_verify_marks_every_load_smoke_request_for_data_capture_readers(cloudformation: Any) -> None:
    """Issue 22: the load smoke's requests landed in data capture unmarked."""
    from app.contracts.invocation import is_synthetic

    stack(cloudformation)
    client = runtime(answers=1 + 1 + 3)  # the invocation check, the load's warm-up, 3 requests
    sent = inference_ids_sent(client)
    report = run_verify(cloudformation, endpoint_stubs(), client, load_requests=3)
    assert report.ok, report.render()
    assert len(sent) == 5 and all(is_synthetic(i) for i in sent), sent


def test_verify_fails_when_the_load_smoke_sees_errors(cloudformation: Any) -> None:
    stack(cloudformation)
    client = runtime(answers=1 + 1 + 2)  # the invocation check, the load's warm-up, 2 good answers ...
    stubber = Stubber(client)
    for _ in range(3):  # ... then the endpoint sheds load
        stubber.add_client_error("invoke_endpoint", service_error_code="ModelError", http_status_code=503)
    stubber.activate()
    report = run_verify(cloudformation, endpoint_stubs(), client, load_requests=5)
    assert failed(report)["load smoke"].startswith("5 requests at concurrency 1: 3 errors")


def test_preflight_refuses_a_model_without_the_precision_the_stage_serves(registry: Any) -> None:
    session, release = registry
    doc = release.model_dump(mode="json")
    doc["model"]["precisions"] = ["fp32"]
    fp32_only = Release.model_validate(doc)
    report = run_preflight(session, fp32_only, stage="Dev", endpoint={"precision": "int8"})
    assert failed(report) == {
        "model precision": "stage Dev: field 'endpoint.precision' is int8, but the release's model "
        "(yolo-detector-dev-1a2b3c4d v1, field 'model.precisions') ships only ['fp32']: the server would refuse "
        "to start. Set endpoint.precision to one of those, or release a model whose int8 graph passed the "
        "accuracy gate (model.json 'int8')"
    }


def test_verify_fails_when_a_protected_stack_is_not_protected(cloudformation: Any) -> None:
    stack(cloudformation)
    cloudformation.create_stack(
        StackName="Staging-Data", TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    )
    report = run_verify(cloudformation, endpoint_stubs(), runtime(), protected=["Staging-Data"])
    assert failed(report) == {"termination protection": "Staging-Data is NOT protected"}


def test_verify_passes_a_protected_stack(cloudformation: Any) -> None:
    stack(cloudformation)
    cloudformation.create_stack(
        StackName="Staging-Data",
        TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}),
        EnableTerminationProtection=True,
    )
    report = run_verify(cloudformation, endpoint_stubs(), runtime(), protected=["Staging-Data"])
    assert report.ok and report.checks[-1].detail == "Staging-Data is protected"


def test_protect_stacks_turns_termination_protection_on_for_each_stack() -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    for name in ("Prod-Data", "Prod-Serving"):
        stubber.add_response(
            "update_termination_protection",
            {"StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/{name}/1"},
            {"EnableTerminationProtection": True, "StackName": name},
        )
    with stubber:
        protect_stacks(client, ["Prod-Data", "Prod-Serving"])
    stubber.assert_no_pending_responses()
