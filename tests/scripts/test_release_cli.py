"""python -m scripts.release: every subcommand's --help, the file-only commands (show, diff, promote, rollback --to) on a
copy of releases/, and the AWS ones against moto (model package approval through the SageMaker Python SDK, stage
history from SSM, cleanup of retained models and endpoint configs, a release's model inspected from S3)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.paths import EXAMPLE_RELEASES_DIR
from infra.release_record import ImageDigest, current_release_id, load_current, load_release
from infra.stack_outputs import DataOutputs
from scripts.lib.cli import EXIT_ERROR, EXIT_OK, OperatorError
from scripts.release.__main__ import build_parser, main
from scripts.release.cleanup import cleanup_candidates
from scripts.release.create import inspect_model, model_card
from scripts.release.images import check_registry_account, registry_serve_uris, resolve_digest, shared_copy
from scripts.release.records import diff
from tests.scripts.aws_fakes import stack_with_outputs

REGION = "eu-west-1"
SUBCOMMANDS = [
    "create", "show", "diff", "approve", "reject", "promote", "rollback", "history", "preflight", "verify", "cleanup",
    "compare",
]  # fmt: skip


@pytest.fixture
def releases(tmp_path: Path) -> Path:
    """A copy of the example releases (tests/fixtures/releases/) plus a second, newer release with another model version and serve digest."""
    folder = tmp_path / "releases"
    shutil.copytree(EXAMPLE_RELEASES_DIR, folder)
    doc = load_current(folder).model_dump(mode="json")
    doc["release_id"] = "r-20261201-1"
    doc["created_at"] = "2026-12-01T09:00:00Z"
    doc["model"]["package_arn"] = doc["model"]["package_arn"].rsplit("/", 1)[0] + "/4"
    doc["model"]["metrics"]["val:mAP50-95"] = 0.66
    doc["images"]["serve"]["gpu"]["digest"] = "sha256:" + "5" * 64
    (folder / "r-20261201-1.json").write_text(json.dumps(doc))
    return folder


def run(releases: Path, *argv: str) -> int:
    return main(["--releases-dir", str(releases), *argv])


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help(subcommand: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([subcommand, "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


def test_show_prints_the_current_release(releases: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(releases, "show") == EXIT_OK
    out = capsys.readouterr().out
    assert "release   r-20261130-1" in out and "val:mAP50-95=0.64" in out


def test_show_refuses_a_malformed_record_naming_the_field(
    releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = releases / "r-20261201-1.json"
    doc = json.loads(path.read_text())
    doc["images"]["train"]["digest"] = "sha256:nope"
    path.write_text(json.dumps(doc))
    assert run(releases, "show", "r-20261201-1") == EXIT_ERROR
    assert (
        "field 'images.train.digest': expected 'sha256:<64 hex>', got 'sha256:nope'"
        in capsys.readouterr().err
    )


def test_diff_names_what_changes(releases: Path) -> None:
    old, new = load_current(releases), load_release(releases / "r-20261201-1.json")
    lines = diff(old, new)
    assert any(line.startswith("images.serve.gpu.digest: sha256:4444") for line in lines)
    assert any(line.startswith("model.metrics.val:mAP50-95: 0.64 -> 0.66") for line in lines)
    assert not any(line.startswith("images.serve.cpu") for line in lines)


def test_promote_points_current_at_the_release(releases: Path) -> None:
    assert run(releases, "promote", "r-20261201-1") == EXIT_OK
    assert current_release_id(releases) == "r-20261201-1"


def test_promote_refuses_an_unknown_release(releases: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(releases, "promote", "r-nope") == EXIT_ERROR
    assert "r-nope.json: cannot read the release record" in capsys.readouterr().err
    assert current_release_id(releases) == "r-20261130-1"


@pytest.mark.parametrize("subcommand", ["history", "rollback", "preflight", "verify", "cleanup"])
def test_a_misspelled_stage_is_a_usage_error_before_any_work(
    subcommand: str, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(releases, subcommand, "--stage", "Prdo")
    assert exit_.value.code == 2
    assert "unknown stage 'Prdo'; expected one of Dev, Staging, Prod" in capsys.readouterr().err


def test_rollback_to_a_named_release(releases: Path) -> None:
    run(releases, "promote", "r-20261201-1")
    assert run(releases, "rollback", "--stage", "Prod", "--to", "r-20261130-1") == EXIT_OK
    assert current_release_id(releases) == "r-20261130-1"


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def data_stack(session: boto3.Session, stage: str, outputs: dict[str, str]) -> None:
    stack_with_outputs(session.client("cloudformation"), f"{stage}-Data", outputs)


def registry_with(aws: boto3.Session, status: str, *, versions: int = 1) -> str:
    """Dev's model package group (found through its Data stack) with ``versions`` versions; the last one's ARN."""
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="yolo-detector-dev-1a2b3c4d")
    for _ in range(versions):
        arn: str = sm.create_model_package(
            ModelPackageGroupName="yolo-detector-dev-1a2b3c4d",
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "x", "ModelDataUrl": "s3://bkt/k.tar.gz"}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    data_stack(aws, "Dev", {"ModelPackageGroupName": "yolo-detector-dev-1a2b3c4d"})
    return arn


@pytest.mark.parametrize(("command", "status"), [("approve", "Approved"), ("reject", "Rejected")])
def test_approve_and_reject_set_the_package_status(
    aws: boto3.Session, releases: Path, command: str, status: str
) -> None:
    arn = registry_with(aws, "PendingManualApproval", versions=2)
    assert (
        run(
            releases,
            "--region",
            REGION,
            command,
            "--stage",
            "Dev",
            "--version",
            "2",
            "--reason",
            "looks good",
        )
        == 0
    )
    described = aws.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == status


def test_approve_refuses_an_unknown_version(
    aws: boto3.Session, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.client("sagemaker").create_model_package_group(ModelPackageGroupName="g")
    data_stack(aws, "Dev", {"ModelPackageGroupName": "g"})
    assert run(releases, "--region", REGION, "approve", "--stage", "Dev", "--version", "9") == EXIT_ERROR
    assert "g has no version 9" in capsys.readouterr().err


def test_history_lists_the_releases_a_stage_ran(
    aws: boto3.Session, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm = aws.client("ssm")
    for release_id in ("r-20261130-1", "r-20261201-1"):
        ssm.put_parameter(
            Name="/yolo-detector/prod/release-id", Value=release_id, Type="String", Overwrite=True
        )
    assert run(releases, "--region", REGION, "history", "--stage", "Prod") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == ["r-20261130-1", "r-20261201-1"]


def test_rollback_without_a_target_takes_the_stage_previous_release(
    aws: boto3.Session, releases: Path
) -> None:
    ssm = aws.client("ssm")
    for release_id in ("r-20261130-1", "r-20261201-1"):
        ssm.put_parameter(
            Name="/yolo-detector/prod/release-id", Value=release_id, Type="String", Overwrite=True
        )
    run(releases, "promote", "r-20261201-1")
    assert run(releases, "--region", REGION, "rollback", "--stage", "Prod") == EXIT_OK
    assert current_release_id(releases) == "r-20261130-1"


def test_rollback_with_no_earlier_release_is_refused(
    aws: boto3.Session, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.client("ssm").put_parameter(
        Name="/yolo-detector/prod/release-id", Value="r-20261130-1", Type="String"
    )
    assert run(releases, "--region", REGION, "rollback", "--stage", "Prod") == EXIT_ERROR
    assert "Prod has no earlier release to roll back to" in capsys.readouterr().err


def model_tar(card: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps(card).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_inspect_model_hashes_the_object_and_reads_its_card(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    body = model_tar({"version": "v7-e80", "dataset_version": "tools-v7"})
    s3.put_object(Bucket="models", Key="m/model.tar.gz", Body=body)
    sha256, card = inspect_model(s3, "models", "m/model.tar.gz")
    assert sha256 == hashlib.sha256(body).hexdigest() and card["version"] == "v7-e80"


def test_inspect_model_refuses_an_archive_without_model_json(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="models", Key="m/model.tar.gz", Body=b"not a tarball")
    with pytest.raises(Exception, match=r"not a readable model.tar.gz"):
        inspect_model(s3, "models", "m/model.tar.gz")


def test_a_tag_resolves_to_its_digest(aws: boto3.Session) -> None:
    ecr = aws.client("ecr")
    uri = ecr.create_repository(repositoryName="dev/serve")["repository"]["repositoryUri"]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {},
            "layers": [],
        }
    )
    ecr.put_image(repositoryName="dev/serve", imageManifest=manifest, imageTag="abc")
    resolved = resolve_digest(ecr, f"{uri}:abc")
    assert resolved.repository == uri and resolved.digest.startswith("sha256:")


def test_an_image_that_cannot_be_copied_into_the_stage_repository_is_named(aws: boto3.Session) -> None:
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    missing = f"{registry}/cdk-assets"  # no such repository
    image = ImageDigest(repository=missing, digest="sha256:" + "a" * 64)
    outputs = {DataOutputs.repository_uri("serve"): f"{registry}/dev-serve"}
    with pytest.raises(OperatorError, match="image serve: --source: repository 'cdk-assets' does not exist"):
        shared_copy(aws.client("ecr"), outputs, "serve", image)


def test_cleanup_keeps_what_runs_what_a_release_references_and_the_newest(aws: boto3.Session) -> None:
    sm = aws.client("sagemaker")
    release = load_current(EXAMPLE_RELEASES_DIR)
    role = "arn:aws:iam::123456789012:role/sagemaker"
    released = {"Image": release.serve_image("cpu").uri, "ModelDataUrl": release.model.model_data_uri}
    containers = {
        "old-unreferenced": {"Image": "x@sha256:" + "0" * 64, "ModelDataUrl": "s3://bkt/old.tar.gz"},
        "old-released": released,
        "other-stage": {"Image": "x@sha256:" + "1" * 64, "ModelDataUrl": "s3://bkt/o.tar.gz"},
        "running": {"Image": "x@sha256:" + "2" * 64, "ModelDataUrl": "s3://bkt/r.tar.gz"},
    }
    for name, container in containers.items():
        stage = "staging" if name == "other-stage" else "prod"
        arn = sm.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer=container)["ModelArn"]
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": stage}])
        config_arn = sm.create_endpoint_config(
            EndpointConfigName=f"cfg-{name}",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": name,
                    "InstanceType": "ml.c5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )["EndpointConfigArn"]
        sm.add_tags(ResourceArn=config_arn, Tags=[{"Key": "stage", "Value": stage}])
    configs, models = cleanup_candidates(
        sm, endpoint_config_in_use="cfg-running", releases=[release], keep=0, stage_tag="prod"
    )
    assert (configs, models) == (["cfg-old-unreferenced"], ["old-unreferenced"])
    assert cleanup_candidates(
        sm, endpoint_config_in_use="cfg-running", releases=[release], keep=3, stage_tag="prod"
    ) == ([], [])


def test_create_refuses_a_package_that_is_not_approved(
    aws: boto3.Session, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = registry_with(aws, "PendingManualApproval")
    assert run(releases, "--region", REGION, "create", "--from-stage", "Dev", "--package-arn", arn) == 3
    assert f"{arn} is PendingManualApproval, expected Approved" in capsys.readouterr().err


def test_a_release_takes_the_serve_image_its_model_version_was_registered_with(aws: boto3.Session) -> None:
    from scripts.release.checks import package_image

    assert package_image(aws, registry_with(aws, "Approved")) == "x"


def _card(int8_shipped: bool | None) -> dict[str, Any]:
    from app.contracts.artifact import INT8_ONNX, ExportInfo, Int8Result, ModelCard

    int8 = None
    if int8_shipped is not None:
        int8 = Int8Result(
            file=INT8_ONNX if int8_shipped else None,
            shipped=int8_shipped,
            reason="passed" if int8_shipped else "mAP50-95 dropped 2.1 points > 1.0",
            max_map50_95_drop=0.01,
            map50_95_drop=0.004 if int8_shipped else 0.021,
            fp32_onnx_metrics={"mAP50-95": 0.64},
            int8_onnx_metrics={"mAP50-95": 0.636},
            calibration_images=64,
            calibration_method="percentile",
            float_nodes=12,
            seconds=30.0,
        )
    card = ModelCard(
        name="yolo-detector",
        version="v7-e80",
        class_names=["drill"],
        imgsz=640,
        ultralytics_version="8.3.0",
        dataset_version="tools-v7",
        export=ExportInfo(opset=17, input_shape=[1, 3, 640, 640], output_shape=[1, 5, 8400]),
        int8=int8,
    )
    return card.model_dump(mode="json")


@pytest.mark.parametrize(
    ("shipped", "expected"), [(True, ("fp32", "int8")), (False, ("fp32",)), (None, ("fp32",))]
)
def test_release_precisions_are_read_from_model_json_inside_model_tar_gz(
    aws: boto3.Session, shipped: bool | None, expected: tuple[str, ...]
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="models", Key="m/model.tar.gz", Body=model_tar(_card(shipped)))
    _, card = inspect_model(s3, "models", "m/model.tar.gz")
    assert tuple(model_card(card, "s3://models/m/model.tar.gz").precisions()) == expected


def test_the_release_keeps_the_int8_bar_and_measured_drop_of_model_json() -> None:
    from infra.release_record import Int8Gate

    card = model_card(_card(True), "s3://models/m/model.tar.gz")
    assert card.int8 is not None
    gate = Int8Gate.of(card.int8)
    assert (gate.status, gate.max_map50_95_drop, gate.map50_95_drop) == ("shipped", 0.01, 0.004)


def test_release_create_refuses_a_model_json_that_is_not_a_model_card() -> None:
    with pytest.raises(
        OperatorError, match=r"s3://models/m/model.tar.gz: model.json field 'name': Field required"
    ):
        model_card({"version": "v7"}, "s3://models/m/model.tar.gz")


REGISTRY = "123456789012"
SERVE_REPO = f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/dev-data-serve"
ASSETS = f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/cdk-hnb659fds-container-assets-{REGISTRY}-{REGION}"


def test_create_takes_every_serve_variant_from_the_registry_build() -> None:
    """Issue 22: the GPU serve image came from the previous record (the example's placeholder), never built."""
    outputs = {"ServeCpuImageUri": f"{ASSETS}:cpu-hash", "ServeGpuImageUri": f"{ASSETS}:gpu-hash"}
    uris = registry_serve_uris(
        outputs, stage="Dev", own=("cpu", f"{ASSETS}:registered"), needed={"cpu", "gpu"}, given=[]
    )
    assert uris == {"cpu": f"{ASSETS}:registered", "gpu": f"{ASSETS}:gpu-hash"}


def test_create_refuses_a_needed_serve_variant_the_registry_did_not_build() -> None:
    with pytest.raises(
        OperatorError,
        match=r"images\.serve\.gpu: Dev-Data has no ServeGpuImageUri output .* -c build_images=Dev",
    ):
        registry_serve_uris({}, stage="Dev", own=("cpu", f"{ASSETS}:x"), needed={"cpu", "gpu"}, given=[])


def test_create_refuses_an_image_outside_the_registry_account() -> None:
    elsewhere = f"999999999999.dkr.ecr.{REGION}.amazonaws.com/my-serve:gpu"
    with pytest.raises(
        OperatorError,
        match=rf"images\.serve\.gpu: {elsewhere} is in account 999999999999, expected the registry account "
        rf"{REGISTRY} \(Dev's build\)",
    ):
        check_registry_account(
            {"serve.cpu": f"{SERVE_REPO}:a", "serve.gpu": elsewhere}, registry=REGISTRY, stage="Dev"
        )
