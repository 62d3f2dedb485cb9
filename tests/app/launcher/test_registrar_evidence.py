"""The registrar approves on evidence (moto): the comparison in the job's model.tar.gz (a real gzipped tar with a
model.json holding a Comparison made through the contract) decides with the quality bar, and is attached to the
version as ModelMetrics (comparison.json in S3, next to the job's output) with its PNGs linked."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from app.contracts.comparison import Comparison, Tolerances
from app.launcher import evidence, registrar
from app.launcher.settings import RegistrarSettings, RunnerSettings
from tests.app.launcher.events import state_change
from tests.app.launcher.stage_settings import ARTIFACTS
from tests.app.launcher.test_registrar import completed_job
from tests.fixtures.comparisons import (
    NOT_WORSE,
    REPORTS,
    STAGE_TOLERANCES,
    WORSE,
    compared,
    diff,
    model_tar,
    png,
)


@pytest.fixture
def group(sagemaker: Any, registrar_settings: RegistrarSettings) -> str:
    sagemaker.create_model_package_group(ModelPackageGroupName=registrar_settings.model_package_group_name)
    return registrar_settings.model_package_group_name


def _register(
    runner_settings: RunnerSettings,
    registrar_settings: RegistrarSettings,
    sagemaker: Any,
    s3: Any,
    comparison: Comparison | None,
    *,
    sns: Any = None,
    map50_95: float = 0.7,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(registrar answer, DescribeModelPackage of the version) for a completed job whose model.json holds
    ``comparison``."""
    name = completed_job(runner_settings, sagemaker, map50_95, s3, comparison)
    answer = registrar.on_state_change(
        state_change(name, "Completed"), settings=registrar_settings, sagemaker=sagemaker, sns=sns, s3=s3
    )
    assert answer["status"] == "registered", answer
    return answer, sagemaker.describe_model_package(ModelPackageName=answer["model_package_arn"])


def _object(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.usefixtures("group")
def test_worse_waits_for_a_person_with_the_lost_class_in_the_description_and_the_message(
    runner_settings: RunnerSettings,
    registrar_settings: RegistrarSettings,
    sagemaker: Any,
    s3: Any,
    sns_inbox: tuple[Any, str, Any, str],
) -> None:
    sns, topic, sqs, queue = sns_inbox
    settings = registrar_settings.model_copy(update={"notify_topic_arn": topic})
    worse = compared(WORSE)
    assert (worse.verdict, worse.worse_classes) == ("worse", ["wrench"])
    answer, package = _register(runner_settings, settings, sagemaker, s3, worse, sns=sns)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    description = package["ModelPackageDescription"]
    assert "worse than champion dev-yolo-detector/3" in description
    assert "wrench -0.1700 [-0.2000, -0.1400] (0.5800 -> 0.4100)" in description, description
    assert "95% CI" in description and "review by hand" in description
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(json.loads(message["Body"])["Message"])
    assert body["approval"] == "PendingManualApproval"
    assert "wrench -0.1700 [-0.2000, -0.1400]" in body["reason"]
    assert body["comparison_report"] == answer["comparison_report"]


@pytest.mark.usefixtures("group")
def test_not_worse_is_approved_with_the_comparison_attached_the_sagemaker_way(
    runner_settings: RunnerSettings, registrar_settings: RegistrarSettings, sagemaker: Any, s3: Any
) -> None:
    held = compared(NOT_WORSE)
    assert held.verdict == "not_worse"
    answer, package = _register(runner_settings, registrar_settings, sagemaker, s3, held)
    assert package["ModelApprovalStatus"] == "Approved", package["ModelPackageDescription"]
    assert "not_worse vs champion dev-yolo-detector/3" in package["ModelPackageDescription"]
    job = package["CustomerMetadataProperties"]["training_job"]
    report = f"s3://{ARTIFACTS}/training-output/{job}/evaluation/comparison.json"
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert (statistics["ContentType"], statistics["S3Uri"]) == ("application/json", report)
    assert statistics["ContentDigest"].startswith("sha256:")
    assert Comparison.model_validate_json(_object(s3, report)) == held
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["comparison:verdict"], metadata["comparison:report"]) == ("not_worse", report)
    for kind, path in REPORTS.items():
        linked = metadata[f"comparison:{kind}"]
        assert (
            linked == f"s3://{ARTIFACTS}/training-output/{job}/evaluation/{path.removeprefix('comparison/')}"
        )
        assert _object(s3, linked) == png()
    assert answer["comparison_report"] == report


@pytest.mark.usefixtures("group")
def test_the_first_model_of_a_stage_is_approved_and_says_so(
    runner_settings: RunnerSettings, registrar_settings: RegistrarSettings, sagemaker: Any, s3: Any
) -> None:
    first = Comparison(status="no_champion", reason="the stage has no Approved version")
    _, package = _register(runner_settings, registrar_settings, sagemaker, s3, first)
    assert package["ModelApprovalStatus"] == "Approved"
    assert "first model of the stage: no champion to compare with" in package["ModelPackageDescription"]
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith(
        "/evaluation/comparison.json"
    )


@pytest.mark.usefixtures("group")
def test_no_champion_while_the_stage_has_an_approved_version_waits(
    runner_settings: RunnerSettings, registrar_settings: RegistrarSettings, sagemaker: Any, s3: Any
) -> None:
    """A request may opt out of the comparison ("champion": "none"): that is no evidence once a model serves."""
    _, before = _register(runner_settings, registrar_settings, sagemaker, s3, compared(NOT_WORSE))
    assert before["ModelApprovalStatus"] == "Approved"
    opted_out = Comparison(status="no_champion", reason="the request opted out")
    name = completed_job(runner_settings, sagemaker, 0.7, s3, opted_out, request={"champion": "none"})
    answer = registrar.on_state_change(
        state_change(name, "Completed"), settings=registrar_settings, sagemaker=sagemaker, sns=None, s3=s3
    )
    assert answer["approval"] == "PendingManualApproval"
    assert f"not compared with the stage's Approved version {before['ModelPackageArn']}" in answer["reason"]


@pytest.mark.usefixtures("group")
@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        (
            Comparison(status="failed", reason="champion weights unreadable"),
            "comparison failed (champion weights",
        ),
        (None, "model.json has no comparison"),
    ],
    ids=["failed", "missing"],
)
def test_a_failed_or_missing_comparison_waits(
    runner_settings: RunnerSettings,
    registrar_settings: RegistrarSettings,
    sagemaker: Any,
    s3: Any,
    comparison: Comparison | None,
    expected: str,
) -> None:
    _, package = _register(runner_settings, registrar_settings, sagemaker, s3, comparison)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert expected in package["ModelPackageDescription"], package["ModelPackageDescription"]
    assert ("ModelMetrics" in package) == (comparison is not None)


@pytest.mark.usefixtures("group")
def test_tolerances_looser_than_the_stage_s_wait(
    runner_settings: RunnerSettings, registrar_settings: RegistrarSettings, sagemaker: Any, s3: Any
) -> None:
    """A verdict reached with looser tolerances than the stage allows is no evidence."""
    loose = Tolerances(
        map_drop_tolerance=0.1, class_drop_tolerance=0.25, min_class_instances=20, confidence=0.95
    )
    lenient = compared(WORSE, loose)
    assert lenient.verdict == "not_worse"  # wrench's -0.20 lower bound passes a 0.25 tolerance
    _, package = _register(runner_settings, registrar_settings, sagemaker, s3, lenient)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert (
        "map_drop_tolerance 0.1 > 0.01; class_drop_tolerance 0.25 > 0.05"
        in package["ModelPackageDescription"]
    )


@pytest.mark.usefixtures("group")
def test_below_the_quality_bar_waits_whatever_the_comparison(
    runner_settings: RunnerSettings, registrar_settings: RegistrarSettings, sagemaker: Any, s3: Any
) -> None:
    _, package = _register(
        runner_settings, registrar_settings, sagemaker, s3, compared(NOT_WORSE), map50_95=0.2
    )
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert "< quality bar" in package["ModelPackageDescription"]


def test_many_worse_classes_keep_the_description_within_its_limit() -> None:
    lost = {f"class-{i:03d}-with-a-long-name": diff(0.6, 0.3, 0.02) for i in range(60)}
    ok, why = evidence.judge(evidence.Evidence(compared(lost)), STAGE_TOLERANCES, None)
    assert not ok
    assert "+55 more classes in comparison.json" in why
    assert len(why) < 1024 - 200  # room for the job name and the quality line


class _CountingStream(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data, self.read_bytes = io.BytesIO(data), 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_the_archive_is_left_once_model_json_and_its_reports_are_read() -> None:
    """SageMaker's tar may hold model.json before the weights: the registrar does not download them."""
    card = json.dumps({"comparison": compared(NOT_WORSE).model_dump(mode="json")}).encode()
    import os

    members = {
        "model.json": card,
        **{path: png() for path in REPORTS.values()},
        "model.onnx": os.urandom(8 << 20),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    stream = _CountingStream(out.getvalue())
    found, reports = evidence.scan(stream, "s3://b/model.tar.gz")  # type: ignore[arg-type]
    assert found == card and set(reports) == set(REPORTS.values())
    assert stream.read_bytes < len(out.getvalue()) // 4, (stream.read_bytes, len(out.getvalue()))


@pytest.mark.parametrize(
    ("archive", "expected"),
    [
        (b"not a tar at all", "not a readable gzipped tar"),
        (model_tar(None)[:2000], "not a readable gzipped tar"),
    ],
    ids=["garbage", "truncated"],
)
def test_an_unreadable_archive_is_named(archive: bytes, expected: str) -> None:
    with pytest.raises(evidence.EvidenceError, match=expected) as raised:
        evidence.scan(io.BytesIO(archive), "s3://b/training-output/j/output/model.tar.gz")
    assert "s3://b/training-output/j/output/model.tar.gz" in str(raised.value)
