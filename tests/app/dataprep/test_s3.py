"""S3 source and destination (moto): manifest and images on S3, dataset written to S3 with server-side copies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from app.dataprep.cli import main
from app.dataprep.storage import Destination, ImageSource


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("gt-bucket", "datasets"):
            client.create_bucket(Bucket=bucket)
        yield client


@pytest.fixture
def s3_manifest(s3, realistic: tuple[Path, Path]) -> str:  # type: ignore[no-untyped-def]
    manifest, root = realistic
    for image in root.rglob("*.*"):
        s3.upload_file(str(image), "gt-bucket", str(image.relative_to(root)))
    s3.upload_file(str(manifest), "gt-bucket", "jobs/tools/output/output.manifest")
    return "s3://gt-bucket/jobs/tools/output/output.manifest"


def keys(s3, bucket: str, prefix: str) -> set[str]:  # type: ignore[no-untyped-def]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", [])}


def test_s3_to_s3_writes_a_complete_dataset(s3, s3_manifest: str) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "--manifest",
            s3_manifest,
            "--out",
            "s3://datasets/tools/v1",
            "--quiet",
            "--max-reject-fraction",
            "0.1",
        ]
    )
    assert code == 0
    written = keys(s3, "datasets", "tools/v1/")
    assert {"data.yaml", "dataset.json", "qa/report.json", "qa/rejects.jsonl"} <= written
    assert len([k for k in written if k.startswith("images/")]) == 25
    info = json.loads(s3.get_object(Bucket="datasets", Key="tools/v1/dataset.json")["Body"].read())
    assert info["source_manifest"] == s3_manifest


def test_s3_copy_preserves_image_bytes(s3, s3_manifest: str, realistic: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    assert (
        main(
            [
                "--manifest",
                s3_manifest,
                "--out",
                "s3://datasets/v2",
                "--quiet",
                "--max-reject-fraction",
                "0.1",
            ]
        )
        == 0
    )
    key = next(k for k in keys(s3, "datasets", "v2/images/") if k.split("/")[-1].startswith("shot_v2_"))
    body = s3.get_object(Bucket="datasets", Key=f"v2/images/{key}")["Body"].read()
    assert body == (realistic[1] / "raw" / "site-a" / "shot.v2.png").read_bytes()


def test_local_images_upload_to_an_s3_destination(s3, realistic: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    manifest, root = realistic
    code = main(["--manifest", str(manifest), "--out", "s3://datasets/local", "--image-root", str(root), "--quiet",
                 "--max-reject-fraction", "0.1"])  # fmt: skip
    assert code == 0 and len([k for k in keys(s3, "datasets", "local/") if k.startswith("labels/")]) == 25


def test_missing_s3_manifest_is_a_one_line_error(
    s3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    code = main(["--manifest", "s3://gt-bucket/nope.manifest", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert (
        code == 2
        and "s3://gt-bucket/nope.manifest: cannot read the manifest" in err
        and len(err.splitlines()) == 1
    )


def test_s3_images_are_downloaded_to_a_local_destination(s3, s3_manifest: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "local"
    assert (
        main(["--manifest", s3_manifest, "--out", str(out), "--quiet", "--max-reject-fraction", "0.1"]) == 0
    )
    assert len(list((out / "images").rglob("*.*"))) == 25


def test_s3_to_s3_copy_is_server_side(s3) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket="gt-bucket", Key="raw/a.jpg", Body=b"jpeg-bytes")
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    source = ImageSource(client=s3)
    Destination("s3://datasets/v3", client=s3).copy_image(
        source, source.resolve("s3://gt-bucket/raw/a.jpg"), "images/train/a.jpg"
    )
    assert "CopyObject" in calls and "GetObject" not in calls
    assert s3.get_object(Bucket="datasets", Key="v3/images/train/a.jpg")["Body"].read() == b"jpeg-bytes"


def test_s3_out_holding_another_version_is_refused(  # type: ignore[no-untyped-def]
    s3, s3_manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "--manifest",
        s3_manifest,
        "--out",
        "s3://datasets/v4",
        "--quiet",
        "--max-reject-fraction",
        "0.1",
    ]
    assert main(common) == 0 and main(common) == 0  # the same plan again: fine
    capsys.readouterr()
    assert main([*common, "--val-fraction", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "s3://datasets/v4/dataset.json: --out already holds dataset version" in err


def test_s3_shards_commit_dataset_json_only_when_both_are_done(s3, s3_manifest: str) -> None:  # type: ignore[no-untyped-def]
    common = ["--manifest", s3_manifest, "--out", "s3://datasets/v5", "--quiet", "--max-reject-fraction", "0.1",
              "--shard-count", "2"]  # fmt: skip
    assert main([*common, "--shard-index", "0"]) == 0
    assert "dataset.json" not in keys(s3, "datasets", "v5/")
    assert main([*common, "--shard-index", "1"]) == 0
    assert "dataset.json" in keys(s3, "datasets", "v5/")


def test_coco_and_yolo_labels_on_s3_make_the_same_dataset(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Both exports uploaded under one prefix: labels and images read from S3 (listing, ranged header reads)."""
    from tests.app.dataprep.label_exports import local_records, write_coco, write_yolo

    data = tmp_path / "export"
    records = local_records(data / "images")
    write_coco(data / "_annotations.coco.json", records, data)  # file_names: images/train/...
    write_yolo(data, records)
    for path in data.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "gt-bucket", f"raw/export/{path.relative_to(data).as_posix()}")
    common = ["--seed", "1", "--val-fraction", "0.25", "--quiet", "--workers", "2"]
    coco = ["--labels", "s3://gt-bucket/raw/export/_annotations.coco.json", "--out", "s3://datasets/coco/"]
    yolo = ["--labels", "s3://gt-bucket/raw/export/data.yaml", "--out", "s3://datasets/yolo/"]
    assert main([*coco, *common]) == 0 and main([*yolo, *common]) == 0
    labels = {
        name: {
            k: s3.get_object(Bucket="datasets", Key=f"{name}/labels/{k}")["Body"].read()
            for k in keys(s3, "datasets", f"{name}/labels/")
        }
        for name in ("coco", "yolo")
    }
    assert labels["coco"] == labels["yolo"] and len(labels["coco"]) == len(records)
