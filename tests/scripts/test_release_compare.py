"""release compare: a synthetic capture folder in SageMaker's data-capture JSONL format (moto S3) replayed through
two real ONNX models (the fall_detection checkpoint exported at imgsz 640 and 320) on real photos (ultralytics'
assets), through app/serving's own decode, letterbox and postprocess."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from infra.constructs.bake_load import SYNTHETIC_INFERENCE_ID
from infra.constructs.training_names import release_parameter_name
from infra.paths import EXAMPLE_RELEASES_DIR
from infra.release_record import CURRENT, Release, load_current
from infra.stack_outputs import ServingOutputs
from scripts.lib.cli import EXIT_ERROR, EXIT_OK
from scripts.lib.replay.capture import (
    CapturedRequest,
    CaptureRead,
    capture_files,
    capture_line,
    local_files,
    newest_requests,
    s3_files,
)
from scripts.lib.replay.matching import match
from scripts.lib.replay.report import load_report
from scripts.release.__main__ import main
from tests.app.serving.samples import ultralytics_asset
from tests.scripts.aws_fakes import stack_with_outputs

REGION = "us-east-1"
BUCKET = "staging-artifacts"
ENDPOINT = "endpoint-1"
PREFIX = f"data-capture/{ENDPOINT}/"


def box(label: str, x1: float, y1: float, x2: float, y2: float, confidence: float = 0.9) -> dict[str, Any]:
    return {
        "label": label,
        "class_id": 0,
        "confidence": confidence,
        "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
    }


# ------------------------------------------------------------------------------------------------ matching
def test_boxes_match_one_to_one_by_class_at_the_iou_bar() -> None:
    candidate = [box("person", 0, 0, 10, 10), box("person", 1, 1, 11, 11), box("car", 50, 50, 60, 60)]
    champion = [box("person", 0, 0, 10, 10), box("car", 50, 50, 60, 66)]  # car IoU 100/160 = 0.625
    result = match(candidate, champion, iou=0.5)
    assert {k: vars(v) for k, v in result.classes.items()} == {
        "car": {"matched": 1, "only_candidate": 0, "only_champion": 0},
        "person": {"matched": 1, "only_candidate": 1, "only_champion": 0},  # one champion box pairs only once
    }
    assert result.candidate_matched == [True, False, True] and result.champion_matched == [True, True]
    assert vars(match(candidate, champion, iou=0.7).classes["car"]) == {
        "matched": 0, "only_candidate": 1, "only_champion": 1,
    }  # fmt: skip


def test_the_same_box_under_another_class_is_a_disagreement() -> None:
    result = match([box("Fall", 0, 0, 10, 10)], [box("Normal", 0, 0, 10, 10)])
    assert result.total.matched == 0 and result.total.union == 2 and result.total.agreement == 0


# ------------------------------------------------------------------------------------------------ capture
def record(
    body: bytes | str,
    content_type: str = "image/jpeg",
    *,
    event_id: str,
    time: str = "2026-12-05T10:00:00Z",
    inference_id: str | None = None,
    encoding: str = "BASE64",
) -> str:
    """One line of SageMaker data capture (the format capture.py cites)."""
    raw = body.encode() if isinstance(body, str) else body
    data = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode()
    metadata = {"eventId": event_id, "inferenceTime": time}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "application/json", "mode": "OUTPUT", "data": "{}", "encoding": "JSON",
                },
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
    )  # fmt: skip


def put_capture(s3: Any, files: dict[str, list[str]]) -> None:
    """``<variant>/yyyy/mm/dd/hh/<name>.jsonl`` -> its lines, under the endpoint's capture prefix."""
    for path, lines in files.items():
        s3.put_object(Bucket=BUCKET, Key=PREFIX + path, Body="\n".join(lines).encode() + b"\n")


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        yield session


def test_capture_files_are_read_newest_first_across_variants_and_hours(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    put_capture(s3, {
        "AllTraffic/2026/12/04/23/10-00-000-a.jsonl": ["{}"],
        "AllTraffic/2026/12/05/09/59-59-000-b.jsonl": ["{}"],
        "Canary/2026/12/05/09/30-00-000-c.jsonl": ["{}"],
        "Canary/2026/12/05/10/00-01-000-d.jsonl": ["{}"],
        "AllTraffic/2026/12/05/10/00-02-000-e.txt": ["not capture"],
    })  # fmt: skip
    names = [key.rsplit("/", 1)[-1] for key in capture_files(s3, BUCKET, PREFIX)]
    assert names == ["00-01-000-d.jsonl", "59-59-000-b.jsonl", "30-00-000-c.jsonl", "10-00-000-a.jsonl"]


def test_the_last_n_requests_skip_and_count_synthetic_ones(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    jpeg = ultralytics_asset("bus.jpg")
    put_capture(s3, {
        "AllTraffic/2026/12/05/09/00-00-000-a.jsonl": [record(jpeg, event_id="old-1"), record(jpeg, event_id="old-2")],
        "AllTraffic/2026/12/05/10/00-00-000-b.jsonl": [
            record(jpeg, event_id="r-1"),
            record(jpeg, event_id="bake", inference_id=SYNTHETIC_INFERENCE_ID),
            record(jpeg, event_id="r-2", inference_id="client-42"),
            record(jpeg, event_id="verify", inference_id="synthetic-verify"),
        ],
    })  # fmt: skip
    read = CaptureRead(files=[])
    got = list(newest_requests(s3_files(s3, BUCKET, PREFIX), 3, read))
    assert [r.event_id for r in got] == ["r-2", "r-1", "old-2"]
    assert read.synthetic == 2 and len(read.files) == 2
    assert isinstance(got[0], CapturedRequest)
    assert got[0].body == jpeg and got[0].where.endswith("00-00-000-b.jsonl:3")
    newest_only = CaptureRead(files=[])
    assert [r.event_id for r in newest_requests(s3_files(s3, BUCKET, PREFIX), 2, newest_only)] == [
        "r-2",
        "r-1",
    ]
    assert len(newest_only.files) == 1  # stopped at N: the older hour was never opened


# ------------------------------------------------------------------------------------------------ the command
def model_tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".onnx", ".json"):
                archive.add(path, arcname=path.name)
    return buffer.getvalue()


def staging_endpoint(aws: boto3.Session, *, capture: bool = True) -> None:
    """moto: Staging-Serving's endpoint, capturing to s3://BUCKET/data-capture (as infra/constructs/endpoint.py)."""
    stack_with_outputs(
        aws.client("cloudformation"), "Staging-Serving", {ServingOutputs.ENDPOINT_NAME: ENDPOINT}
    )
    sm = aws.client("sagemaker")
    sm.create_model(
        ModelName="m", PrimaryContainer={"Image": "x"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r"
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    extra: dict[str, Any] = {}
    if capture:
        extra["DataCaptureConfig"] = {
            "EnableCapture": True, "InitialSamplingPercentage": 20, "DestinationS3Uri": f"s3://{BUCKET}/data-capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="cfg", ProductionVariants=[variant], **extra)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg")


def production_traffic(aws: boto3.Session) -> None:
    """Two real requests (a raw JPEG, a JSON body), the platform's own two, a corrupt image and a line that is not
    a record."""
    bus, zidane = ultralytics_asset("bus.jpg"), ultralytics_asset("zidane.jpg")
    as_json = json.dumps({"image": base64.b64encode(zidane).decode()})
    put_capture(aws.client("s3"), {"AllTraffic/2026/12/05/10/00-00-000-a.jsonl": [
        record(bus, event_id="bus-request", time="2026-12-05T10:00:01Z"),
        record(bus, event_id="bake", inference_id=SYNTHETIC_INFERENCE_ID),
        record(as_json, "application/json", event_id="zidane-request", encoding="JSON", time="2026-12-05T10:00:02Z"),
        record(b"\xff\xd8\xff not really a jpeg", event_id="corrupt-request"),
        record(bus, event_id="verify", inference_id="synthetic-verify"),
        '{"captureData": ',
    ]})  # fmt: skip


def compare(releases: Path, *argv: str) -> int:
    return main(["--region", REGION, "--releases-dir", str(releases), "compare", "--stage", "Staging", *argv])


def test_replay_reports_agreement_per_class_and_draws_where_the_models_disagree(
    aws: boto3.Session, photo_artifact: Path, photo_artifact_320: Path, tmp_path: Path
) -> None:
    staging_endpoint(aws)
    production_traffic(aws)
    aws.client("s3").put_object(
        Bucket=BUCKET, Key="models/candidate/model.tar.gz", Body=model_tar_gz(photo_artifact)
    )
    out = tmp_path / "out"
    code = compare(
        tmp_path, "--candidate", f"s3://{BUCKET}/models/candidate/model.tar.gz",
        "--champion", str(photo_artifact_320), "--out", str(out),
    )  # fmt: skip
    assert code == EXIT_OK
    report = load_report(out / "replay.json")
    assert (report.requests, report.images, report.skipped_synthetic) == (2, 2, 2)
    assert (report.first_time, report.last_time) == ("2026-12-05T10:00:01Z", "2026-12-05T10:00:02Z")
    where = f"s3://{BUCKET}/{PREFIX}AllTraffic/2026/12/05/10/00-00-000-a.jsonl"
    undecodable = {p.where: p for p in report.undecodable}
    assert set(undecodable) == {f"{where}:4", f"{where}:6"}
    assert undecodable[f"{where}:4"].event_id == "corrupt-request"
    assert "image" in undecodable[f"{where}:4"].why and "JSON" in undecodable[f"{where}:6"].why
    # Per class and overall add up, and the two exports disagree somewhere without disagreeing everywhere.
    assert set(report.classes) <= {"Normal", "Fall"} and report.classes
    for field in ("matched", "only_candidate", "only_champion"):
        assert getattr(report.overall, field) == sum(getattr(c, field) for c in report.classes.values())
    assert report.overall.matched > 0 and report.overall.only_candidate + report.overall.only_champion > 0
    assert 0 < report.overall.agreement < 1
    assert report.candidate.version == "parity" and report.champion.version == "imgsz-320"
    # The images they disagree on, drawn at the original size, most disagreeing first.
    assert report.disagreements and all(
        d.event_id in ("bus-request", "zidane-request") for d in report.disagreements
    )
    assert [d.agreement for d in report.disagreements] == sorted(d.agreement for d in report.disagreements)
    sizes = {"bus-request": (810, 1080), "zidane-request": (1280, 720)}
    for drawn in report.disagreements:
        with Image.open(out / drawn.file) as image:
            assert image.format == "JPEG" and image.size == sizes[drawn.event_id]


def test_the_same_model_on_both_sides_agrees_on_every_box(
    aws: boto3.Session, photo_artifact: Path, tmp_path: Path
) -> None:
    staging_endpoint(aws)
    production_traffic(aws)
    out = tmp_path / "out"
    assert (
        compare(
            tmp_path, "--candidate", str(photo_artifact), "--champion", str(photo_artifact), "--out", str(out)
        )
        == 0
    )
    report = load_report(out / "replay.json")
    assert report.overall.matched > 0 and report.overall.agreement == 1.0
    assert report.disagreements == [] and not any((out / "disagreements").iterdir())


def test_an_endpoint_without_data_capture_is_refused_before_any_model_is_read(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staging_endpoint(aws, capture=False)
    code = compare(
        tmp_path, "--candidate", "s3://nowhere/model.tar.gz", "--champion", "s3://nowhere/model.tar.gz"
    )
    assert code == EXIT_ERROR
    assert f"endpoint {ENDPOINT} captures no data" in capsys.readouterr().err


def test_a_capture_without_requests_is_refused(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staging_endpoint(aws)
    code = compare(
        tmp_path, "--candidate", "s3://nowhere/model.tar.gz", "--champion", "s3://nowhere/model.tar.gz"
    )
    assert code == EXIT_ERROR
    assert f"s3://{BUCKET}/{PREFIX}: no captured requests yet" in capsys.readouterr().err


def releases_of(folder: Path, model_data: str, body: bytes) -> tuple[str, str]:
    """``folder`` as an operator's releases/: the example record (the champion) and a newer one (the candidate,
    CURRENT), both naming ``model_data`` with ``body``'s sha256. Returns (champion id, candidate id)."""
    folder.mkdir()
    doc = load_current(EXAMPLE_RELEASES_DIR).model_dump(mode="json")
    doc["model"].update(model_data_uri=model_data, sha256=hashlib.sha256(body).hexdigest())
    ids = (doc["release_id"], "r-20261205-1")
    for release_id in ids:
        doc["release_id"] = release_id
        (folder / f"{release_id}.json").write_text(Release.model_validate(doc).to_json())
    (folder / CURRENT).write_text(ids[1] + "\n")
    return ids


def test_by_default_the_current_release_is_compared_with_what_the_next_stage_verified_last(
    aws: boto3.Session, photo_artifact: Path, tmp_path: Path
) -> None:
    staging_endpoint(aws)
    production_traffic(aws)
    body = model_tar_gz(photo_artifact)
    aws.client("s3").put_object(Bucket=BUCKET, Key="models/v1/model.tar.gz", Body=body)
    champion, candidate = releases_of(tmp_path / "releases", f"s3://{BUCKET}/models/v1/model.tar.gz", body)
    aws.client("ssm").put_parameter(Name=release_parameter_name("Prod"), Value=champion, Type="String")
    out = tmp_path / "out"
    assert compare(tmp_path / "releases", "--out", str(out), "--keep", "0") == EXIT_OK
    report = load_report(out / "replay.json")
    assert (report.candidate.release_id, report.champion.release_id) == (candidate, champion)


def test_a_release_whose_model_object_changed_is_refused(
    aws: boto3.Session, photo_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staging_endpoint(aws)
    production_traffic(aws)
    uri = f"s3://{BUCKET}/models/v1/model.tar.gz"
    _, candidate = releases_of(tmp_path / "releases", uri, b"the object the release was made from")
    aws.client("s3").put_object(
        Bucket=BUCKET, Key="models/v1/model.tar.gz", Body=model_tar_gz(photo_artifact)
    )
    code = compare(tmp_path / "releases", "--champion", str(photo_artifact), "--out", str(tmp_path / "out"))
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"{uri}: sha256 " in err and f"the one release {candidate} recorded" in err


def test_a_capture_on_disk_is_read_newest_first_like_the_s3_one(tmp_path: Path) -> None:
    """``--capture DIR`` (an ``aws s3 sync`` of a capture, or the demo's): the same order and records as from S3,
    and what capture_line writes (the demo's capture) parses back to the request that was sent."""
    jpeg = ultralytics_asset("bus.jpg")
    as_json = json.dumps({"image": base64.b64encode(jpeg).decode()}).encode()
    files = {
        "AllTraffic/2026/12/04/23/10-00-000-a.jsonl": [capture_line(jpeg, "image/jpeg", event_id="a", inference_time="t")],
        "AllTraffic/2026/12/05/09/59-59-000-b.jsonl": [
            capture_line(jpeg, "image/jpeg", event_id="b", inference_time="t"),
            capture_line(as_json, "application/json", event_id="b-json", inference_time="t"),
        ],
        "Canary/2026/12/05/10/00-01-000-d.jsonl": [
            capture_line(jpeg, "image/jpeg", event_id="d", inference_time="t", inference_id="synthetic-verify")
        ],
    }  # fmt: skip
    for name, lines in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    assert [Path(where).name for where, _ in local_files(tmp_path)] == [
        "00-01-000-d.jsonl", "59-59-000-b.jsonl", "10-00-000-a.jsonl",
    ]  # fmt: skip
    read = CaptureRead(files=[])
    got = list(newest_requests(local_files(tmp_path), 2, read))
    assert [r.event_id for r in got] == ["b-json", "b"] and read.synthetic == 1
    assert all(isinstance(r, CapturedRequest) for r in got)
    json_request, jpeg_request = got
    assert isinstance(json_request, CapturedRequest) and isinstance(jpeg_request, CapturedRequest)
    assert (json_request.content_type, json_request.body) == ("application/json", as_json)
    assert (jpeg_request.content_type, jpeg_request.body) == ("image/jpeg", jpeg)
    assert len(read.files) == 2  # stopped at N: the oldest file was never opened
