"""scripts/dataprep_job.py: the CreateProcessingJob request built from the Training stack outputs (moto for
CloudFormation; botocore Stubber checks the exact request, as moto's Processing support is partial). ~2 s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

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
        s3.put_object(Bucket=BUCKET, Key=MANIFEST.removeprefix(f"s3://{BUCKET}/"), Body=b"{}\n")
        yield


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


def test_sharded_job_uses_the_stack_outputs_and_replicates_the_manifest(
    stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {
        "ProcessingJobName": "dataprep-dev-20231114-221320",
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python", "-m", "app.dataprep.processing"],
            "ContainerArguments": ["--out", f"s3://{BUCKET}/datasets/people-v2/", "--val-fraction", "0.1"],
        },
        "ProcessingInputs": [
            {
                "InputName": "manifest",
                "S3Input": {
                    "S3Uri": MANIFEST,
                    "LocalPath": "/opt/ml/processing/input/manifest",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
        ],
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
