"""The release record: the checked-in example is valid, and each malformed field is refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.paths import EXAMPLE_RELEASES_DIR
from infra.release_record import (
    Release,
    ReleaseError,
    current_release_id,
    load_current,
    load_release,
    parse_release,
)

RELEASES = EXAMPLE_RELEASES_DIR  # the example record (a fixture); the operator's releases/ is theirs


def example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((RELEASES / f"{current_release_id(RELEASES)}.json").read_text())
    return doc


def test_example_release_is_valid() -> None:
    release = load_current(RELEASES)
    assert release.model.approval_status == "Approved"
    assert set(release.images.serve) == {"cpu", "gpu"}
    assert release.serve_image("gpu").uri.endswith("@" + release.images.serve["gpu"].digest)


def test_every_example_release_is_valid_and_named_after_its_id() -> None:
    records = sorted(RELEASES.glob("*.json"))
    assert records
    for path in records:
        assert load_release(path).release_id == path.stem


def test_round_trip_is_stable() -> None:
    release = load_current(RELEASES)
    assert parse_release(release.to_json(), source="x") == release


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("images", "serve", "gpu", "digest"),
            "sha256:12ab",
            r"images\.serve\.gpu\.digest': expected 'sha256:<64 hex>'",
        ),
        (
            ("images", "train", "digest"),
            "latest",
            r"images\.train\.digest': expected 'sha256:<64 hex>', got 'latest'",
        ),
        (
            ("model", "approval_status"),
            "PendingManualApproval",
            r"model\.approval_status': expected 'Approved'",
        ),
        (("model", "sha256"), "abc", r"model\.sha256': expected 64 lowercase hex"),
        (
            ("model", "model_data_uri"),
            "s3://bucket/model.onnx",
            r"model\.model_data_uri': expected 's3://<bucket>/<key>\.tar\.gz'",
        ),
        (
            ("model", "package_arn"),
            "arn:aws:sagemaker:eu-west-1:1:model-package/x",
            r"model\.package_arn': expected",
        ),
        (("git_commit",), "HEAD", r"git_commit': expected a full 40-hex git commit"),
        (("images", "serve", "tpu"), {"repository": "x", "digest": "y"}, r"images\.serve\.tpu"),
        (("surprise",), 1, r"surprise': Extra inputs are not permitted"),
        (  # issue 22: every image comes from the registry's one build
            ("images", "serve", "gpu", "repository"),
            "999999999999.dkr.ecr.eu-west-1.amazonaws.com/my-serve",
            r"\(record\)': images\.serve\.gpu: expected an image in the registry account 111111111111 "
            r"\(model\.package_arn's: images are built once, there\), got account 999999999999",
        ),
    ],
)
def test_malformed_field_is_refused_by_name(path: tuple[str, ...], value: object, message: str) -> None:
    doc = example()
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ReleaseError, match=rf"^r\.json: field '{message}"):
        parse_release(json.dumps(doc), source="r.json")


def test_missing_quality_metric_is_refused() -> None:
    doc = example()
    del doc["model"]["metrics"]["val:mAP50-95"]
    with pytest.raises(ReleaseError, match=r"field 'model': .*expected the quality metric 'val:mAP50-95'"):
        parse_release(json.dumps(doc), source="r.json")


def test_not_json_is_refused_with_the_source() -> None:
    with pytest.raises(ReleaseError, match=r"^r\.json: field '\(record\)': not a JSON document"):
        parse_release("{", source="r.json")


def test_a_stage_needing_a_serve_variant_the_release_lacks_is_refused() -> None:
    doc = example()
    del doc["images"]["serve"]["gpu"]
    release = Release.model_validate(doc)
    with pytest.raises(
        ReleaseError, match=r"field 'images\.serve\.gpu': expected a digest of the gpu serve image"
    ):
        release.serve_image("gpu")


def test_record_must_be_named_after_its_id(tmp_path: Path) -> None:
    (tmp_path / "r-other.json").write_text(json.dumps(example()))
    with pytest.raises(ReleaseError, match=r"release_id': expected 'r-other'"):
        load_release(tmp_path / "r-other.json")


def test_current_pointer_must_hold_one_id(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("../etc/passwd\n")
    with pytest.raises(ReleaseError, match=r"CURRENT: expected one release id"):
        load_current(tmp_path)


def test_a_record_without_precisions_ships_fp32_only() -> None:
    doc = example()
    del doc["model"]["precisions"]
    assert Release.model_validate(doc).model.precisions == ("fp32",)


@pytest.mark.parametrize("precisions", [["int8"], ["fp32", "fp32"], ["fp16"]])
def test_precisions_without_fp32_or_unknown_are_refused_naming_the_field(precisions: list[str]) -> None:
    doc = example()
    doc["model"]["precisions"] = precisions
    with pytest.raises(ReleaseError, match=r"x.json: field 'model.*"):
        parse_release(json.dumps(doc), source="x.json")


def test_the_example_release_ships_both_precisions() -> None:
    assert load_current(RELEASES).model.precisions == ("fp32", "int8")
