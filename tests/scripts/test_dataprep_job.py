"""scripts/dataprep_job.py: the CreateProcessingJob request built from the Training stack outputs (moto for
CloudFormation; botocore Stubber checks the exact request, as moto's Processing support is partial). ~2 s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from app.contracts.storage import S3Uri
from scripts import dataprep_job
from tests.scripts.aws_fakes import stack_with_outputs

REGION = "us-east-1"
BUCKET = "dev-datasets-bucket"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/dataprep@sha256:{'c' * 64}"
ROLE = "arn:aws:iam::123456789012:role/Dev-Training-DataprepRole"
KEY = f"arn:aws:kms:{REGION}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OUTPUTS = {
    "DataprepImageUri": IMAGE,
    "DataprepRoleArn": ROLE,
    "DatasetsBucketName": BUCKET,
    "DataKeyArn": KEY,
}
MANIFEST = f"s3://{BUCKET}/raw/labelling-7/output.manifest"
NOW = 1_700_000_000.0


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        stack_with_outputs(boto3.client("cloudformation", region_name=REGION), "Dev-Training", OUTPUTS)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        put(MANIFEST, manifest_lines(f"s3://{BUCKET}/raw/labelling-7/images"))
        yield


def put(uri: str, body: str | bytes) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=body)


def manifest_lines(image_prefix: str, count: int = 3) -> str:
    """A Ground Truth output manifest whose source-refs are under ``image_prefix``."""
    return "".join(
        json.dumps({"source-ref": f"{image_prefix}/img{i}.jpg", "job": {"annotations": []}}) + "\n"
        for i in range(count)
    )


def _stub_sagemaker(monkeypatch: pytest.MonkeyPatch, expected: dict[str, Any]) -> Stubber:
    """Serve create_processing_job from a Stubber that insists on exactly ``expected``."""
    client = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "create_processing_job",
        {"ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:1:processing-job/x"},
        expected,
    )
    real = boto3.Session.client

    def client_for(self: boto3.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        return client if service == "sagemaker" else real(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.Session, "client", client_for)
    return stubber


def test_sharded_job_uses_the_stack_outputs_and_passes_the_labels(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {
        "ProcessingJobName": "dataprep-dev-20231114-221320",
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python", "-m", "app.dataprep.processing"],
            "ContainerArguments": [
                "--out",
                f"s3://{BUCKET}/datasets/people-v2/",
                "--labels",
                MANIFEST,
                "--val-fraction",
                "0.1",
            ],
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 3,
                "InstanceType": "ml.m5.2xlarge",
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": KEY,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 6 * 3600},
        "Tags": [{"Key": "platform:stage", "Value": "Dev"}],
    }
    with _stub_sagemaker(monkeypatch, expected) as stubber:
        code = dataprep_job.main(
            [
                "--stage", "Dev", "--manifest", MANIFEST, "--out", f"s3://{BUCKET}/datasets/people-v2",
                "--instance-count", "3", "--instance-type", "ml.m5.2xlarge", "--", "--val-fraction", "0.1",
            ],
            now=NOW,
        )  # fmt: skip
        stubber.assert_no_pending_responses()
    assert code == 0
    assert "dataprep-dev-20231114-221320" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--manifest", "s3://other-bucket/raw/x/output.manifest", "raw/"),
        ("--manifest", f"s3://{BUCKET}/datasets/x/output.manifest", "raw/"),
        ("--out", f"s3://{BUCKET}/raw/overwritten/", "never over raw data"),
        ("--out", "s3://other-bucket/datasets/x/", BUCKET),
    ],
)
def test_locations_the_dataprep_role_cannot_use_are_refused_before_any_job(
    stack: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    needle: str,
) -> None:
    argv = {"--manifest": MANIFEST, "--out": f"s3://{BUCKET}/datasets/x/", option: value}
    with _stub_sagemaker(monkeypatch, {}) as stubber:  # a call would consume the queued response
        code = dataprep_job.main(["--stage", "Dev", *(x for kv in argv.items() for x in kv)], now=NOW)
        with pytest.raises(AssertionError):  # the queued response is still there: nothing was sent
            stubber.assert_no_pending_responses()
    assert code == 1
    err = capsys.readouterr().err
    assert option in err
    assert needle in err


def test_undeployed_stage_is_reported_without_a_traceback(
    stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = dataprep_job.main(["--stage", "Prod", "--manifest", MANIFEST, "--out", f"s3://{BUCKET}/d/"])
    assert code == 1
    assert "Prod-Training" in capsys.readouterr().err


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dataprep_job.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--stage", "--manifest", "--out", "--instance-count", "--instance-type"):
        assert option in out


def _refused(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    """Run the command with a SageMaker stub that would consume a queued CreateProcessingJob; assert none was sent."""
    with _stub_sagemaker(monkeypatch, {}) as stubber:
        code = dataprep_job.main(argv, now=NOW)
        with pytest.raises(AssertionError):  # the queued response is still there: nothing was billed
            stubber.assert_no_pending_responses()
    return code


OUT = ["--out", f"s3://{BUCKET}/datasets/x/"]


def test_images_outside_the_readable_locations_are_refused_naming_the_setting(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a real Ground Truth output manifest: source-refs in the labelling job's input bucket, not under raw/
    labels = f"s3://{BUCKET}/raw/job-8/output.manifest"
    put(labels, manifest_lines("s3://labelling-input-bucket/batch-1", count=5))
    assert _refused(monkeypatch, ["--stage", "Dev", "--labels", labels, *OUT]) == 1
    err = capsys.readouterr().err
    assert "5 image location(s) outside" in err and "s3://labelling-input-bucket/batch-1/img0.jpg" in err
    assert "stage setting 'label_sources' of Dev in infra/stages.py" in err
    assert "{'uri': 's3://labelling-input-bucket/batch-1/'}" in err


def test_a_file_in_no_supported_format_is_refused(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = f"s3://{BUCKET}/raw/job-9/labels.csv"
    put(labels, "image,xmin,ymin\na.jpg,1,2\n")
    assert _refused(monkeypatch, ["--stage", "Dev", "--labels", labels, *OUT]) == 1
    assert "not JSON or YAML; expected a Ground Truth output manifest" in capsys.readouterr().err


def test_a_coco_file_given_as_a_manifest_is_refused_before_billing(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--manifest means a Ground Truth manifest: a COCO file there has no source-ref to check and used to start a job
    that rejects every line."""
    labels = f"s3://{BUCKET}/raw/cvat/instances.json"
    put(labels, json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "drill"}]}))
    assert _refused(monkeypatch, ["--stage", "Dev", "--manifest", labels, *OUT]) == 1
    assert "the file is a coco label file, not groundtruth; pass it with --labels" in capsys.readouterr().err


def test_a_missing_label_file_is_refused(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = f"s3://{BUCKET}/raw/nothing-here/instances.json"
    assert _refused(monkeypatch, ["--stage", "Dev", "--labels", labels, *OUT]) == 1
    assert "no such object" in capsys.readouterr().err


def test_coco_images_are_checked_relative_to_the_file(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = f"s3://{BUCKET}/raw/cvat/annotations/instances_default.json"
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
        "annotations": [],
        "categories": [{"id": 1, "name": "cat"}],
    }
    put(labels, json.dumps(doc))
    argv = [
        "--stage",
        "Dev",
        "--labels",
        labels,
        *OUT,
        "--",
        "--image-base",
        "s3://other-bucket/cvat/images/",
    ]
    assert _refused(monkeypatch, argv) == 1
    assert "s3://other-bucket/cvat/images/a.jpg" in capsys.readouterr().err
    request_keys = ("ProcessingJobName", "RoleArn", "AppSpecification", "ProcessingResources")
    expected = {**dict.fromkeys(request_keys, ANY), "StoppingCondition": ANY, "Tags": ANY}
    with _stub_sagemaker(monkeypatch, expected) as stubber:
        code = dataprep_job.main(["--stage", "Dev", "--labels", labels, *OUT], now=NOW)
        stubber.assert_no_pending_responses()
    assert code == 0 and f"labels: {labels} (coco)" in capsys.readouterr().out


def test_yolo_folders_outside_are_refused(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = f"s3://{BUCKET}/raw/roboflow/data.yaml"
    put(labels, "train: s3://labelling-input-bucket/yolo/images/train\nnames: [cat]\n")
    for named in (labels, f"s3://{BUCKET}/raw/roboflow/"):  # by its data.yaml or by its folder
        assert _refused(monkeypatch, ["--stage", "Dev", "--labels", named, *OUT]) == 1
        assert "s3://labelling-input-bucket/yolo/images/train" in capsys.readouterr().err
    # an image list (.txt) is read: the images it names are checked one by one
    put(labels, "train: train.txt\nnames: [cat]\n")
    put(f"s3://{BUCKET}/raw/roboflow/train.txt", "images/a.jpg\ns3://labelling-input-bucket/b.jpg\n")
    assert _refused(monkeypatch, ["--stage", "Dev", "--labels", labels, *OUT]) == 1
    err = capsys.readouterr().err
    assert "1 image location(s) outside" in err and "s3://labelling-input-bucket/b.jpg" in err


def test_a_listed_label_source_is_readable(stack: None) -> None:
    labels = f"s3://{BUCKET}/raw/job-8/output.manifest"
    put(labels, manifest_lines("s3://labelling-input-bucket/batch-1"))
    args = dataprep_job.parser().parse_args(["--stage", "Dev", "--labels", labels, *OUT])
    options = dataprep_job.parsed_dataprep_options([])
    allowed = [S3Uri(BUCKET, "raw/"), S3Uri.parse("s3://labelling-input-bucket/batch-1/")]
    assert (
        dataprep_job.preflight(boto3.client("s3", region_name=REGION), args, allowed, options)
        == "groundtruth"
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--instance-type", "ml.c7g.xlarge"], "Graviton"),
        (["--labels", f"s3:/{BUCKET}/raw/x.json"], "is not an S3 URI"),
        (["--out", f"s3://{BUCKET.upper()}/datasets/x/"], "bucket"),
    ],
)
def test_usage_mistakes_exit_2_before_any_aws_call(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--labels": MANIFEST, "--out": f"s3://{BUCKET}/datasets/x/"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    with pytest.raises(SystemExit) as exit_info:
        dataprep_job.main(["--stage", "Dev", *(x for kv in base.items() for x in kv)])
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err
