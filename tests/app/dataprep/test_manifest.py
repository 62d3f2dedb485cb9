"""Parsing and validation of Ground Truth manifests: every bad record kind is reported with its line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dataprep.errors import DataprepError
from app.dataprep.manifest import detect_label_attribute, parse_manifest
from tests.app.dataprep.ground_truth import ATTR, box, failed_worker, record, write_manifest

GOOD = record("s3://b/k/good.jpg", [box(7, 1, 1, 10, 10)])


def reasons_by_line(parsed) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for r in parsed.rejects:
        out.setdefault(r.line, set()).add(r.reason)
    return out


def test_label_attribute_is_detected_from_metadata_type(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m", [failed_worker("s3://b/x.jpg"), GOOD])
    assert detect_label_attribute(path) == ATTR


def test_several_label_attributes_require_an_explicit_choice(tmp_path: Path) -> None:
    two = record("s3://b/k/a.jpg", [box(7, 1, 1, 5, 5)])
    two.update({k: v for k, v in record("s3://b/k/a.jpg", attr="adjust-job").items() if k != "source-ref"})
    path = write_manifest(tmp_path / "m", [two])
    with pytest.raises(DataprepError, match="several object-detection label attributes"):
        parse_manifest(path)
    assert parse_manifest(path, "adjust-job").label_attribute == "adjust-job"


def test_manifest_without_any_label_attribute_is_a_clear_error(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m", [{"source-ref": "s3://b/a.jpg"}])
    with pytest.raises(DataprepError, match="no label attribute found"):
        parse_manifest(path)


def test_sparse_class_map_is_remapped_to_contiguous_ids_in_source_order(tmp_path: Path) -> None:
    items = [
        record("s3://b/1.jpg", [box(7, 0, 0, 5, 5)], class_map={"7": "screwdriver"}),
        record(
            "s3://b/2.jpg", [box(0, 0, 0, 5, 5), box(3, 1, 1, 5, 5)], class_map={"0": "drill", "3": "hammer"}
        ),
    ]
    parsed = parse_manifest(write_manifest(tmp_path / "m", items))
    assert [(c.id, c.name, c.source_id) for c in parsed.classes] == [
        (0, "drill", "0"),
        (1, "hammer", "3"),
        (2, "screwdriver", "7"),
    ]
    assert parsed.boxes["cls"].tolist() == [2, 0, 1]


BAD_RECORDS = {
    "malformed_json": '{"source-ref": "s3://b/broken.jpg", ',
    "failed_worker": failed_worker("s3://b/failed.jpg"),
    "missing_image_size": {**record("s3://b/nosize.jpg"), ATTR: {"annotations": []}},
    "unknown_class_id": record("s3://b/unknown.jpg", [box(5, 1, 1, 5, 5)]),
    "bad_box": record("s3://b/badbox.jpg", [{"class_id": 7, "left": "x", "top": 1, "width": 2, "height": 2}]),
    "missing_source_ref": {k: v for k, v in GOOD.items() if k != "source-ref"},
    "unsupported_image_type": record("s3://b/file.gif", [box(7, 1, 1, 5, 5)]),
    "duplicate_source_ref": GOOD,
    "zero_area": record("s3://b/zero.jpg", [box(7, 1, 1, 0, 5)]),
    "out_of_bounds": record("s3://b/outside.jpg", [box(7, 500, 500, 5, 5)]),
}


@pytest.mark.parametrize("reason", sorted(BAD_RECORDS))
def test_bad_record_is_reported_with_its_line_number(tmp_path: Path, reason: str) -> None:
    path = write_manifest(tmp_path / "m", [GOOD, record("s3://b/other.jpg"), BAD_RECORDS[reason]])
    parsed = parse_manifest(path, ATTR)
    assert reasons_by_line(parsed) == {3: {reason}}
    (reject,) = parsed.rejects
    assert "expected" in reject.detail


def test_record_level_reject_keeps_the_raw_record(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m", [GOOD, failed_worker("s3://b/failed.jpg")])
    (reject,) = parse_manifest(path).rejects
    assert json.loads(reject.record or "")["source-ref"] == "s3://b/failed.jpg"


def test_box_partly_outside_is_clipped_to_the_image(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m", [record("s3://b/a.jpg", [box(7, -10, 40, 30, 30)], size=(64, 48))])
    parsed = parse_manifest(path)
    assert parsed.boxes[["x1", "y1", "x2", "y2"]].iloc[0].tolist() == [0, 40, 20, 48]
    assert parsed.clipped_lines == [1] and not parsed.rejects


def test_unknown_class_rejects_the_whole_image_with_its_other_boxes(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path / "m", [GOOD, record("s3://b/u.jpg", [box(7, 1, 1, 5, 5), box(9, 1, 1, 5, 5)])]
    )
    parsed = parse_manifest(path)
    assert parsed.images["source_ref"].tolist() == ["s3://b/k/good.jpg"]
    assert parsed.boxes["image"].tolist() == [0]


def test_image_without_boxes_is_kept_as_a_negative(tmp_path: Path) -> None:
    parsed = parse_manifest(write_manifest(tmp_path / "m", [GOOD, record("s3://b/empty.jpg")]))
    assert len(parsed.images) == 2 and len(parsed.boxes) == 1 and not parsed.rejects


def test_conflicting_class_names_for_one_id_are_rejected(tmp_path: Path) -> None:
    clash = record("s3://b/c.jpg", [box(7, 1, 1, 5, 5)], class_map={"7": "chisel"})
    parsed = parse_manifest(write_manifest(tmp_path / "m", [GOOD, clash]))
    assert reasons_by_line(parsed) == {2: {"bad_class_map"}}
    assert "line 1" in parsed.rejects[0].detail


junk = st.one_of(
    st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s and s.strip()),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ).map(json.dumps),
    st.builds(
        lambda c, left, t, w, h: json.dumps(record("s3://b/h.jpg", [box(c, left, t, w, h)])),
        st.integers(-2, 9),
        st.floats(-100, 200) | st.none(),
        st.floats(-100, 200),
        st.floats(-50, 100),
        st.floats(-50, 100),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(junk, min_size=1, max_size=8))
def test_arbitrary_lines_never_crash_and_every_record_is_accounted_for(
    tmp_path: Path, lines: list[str]
) -> None:
    path = write_manifest(tmp_path / "m", [json.dumps(GOOD), *lines])
    parsed = parse_manifest(path, ATTR)
    kept_lines = set(parsed.images["line"].tolist())
    record_rejects = {r.line for r in parsed.rejects if r.scope == "record"}
    assert kept_lines.isdisjoint(record_rejects)
    assert len(kept_lines | record_rejects) == parsed.records
    assert all(r.line >= 1 for r in parsed.rejects)


def test_parallel_chunked_scan_matches_a_single_pass(tmp_path: Path) -> None:
    items: list[object] = []
    for i in range(300):
        items.append(record(f"s3://b/{i % 250}.jpg", [box(7, i % 50, 1, 10, 10), box(0, 1, 1, 5, 5)]))
        if i % 40 == 0:
            items += ["{oops", failed_worker(f"s3://b/f{i}.jpg"), ""]
    # a class-map clash, far from the first record
    items.append(record("s3://b/late.jpg", [box(7, 1, 1, 5, 5)], class_map={"7": "chisel"}))
    path = write_manifest(tmp_path / "m", items)  # type: ignore[arg-type]
    single = parse_manifest(path, ATTR, workers=1)
    chunked = parse_manifest(path, ATTR, workers=2, chunk_bytes=4096)
    assert chunked.rejects == single.rejects
    assert chunked.images.equals(single.images) and chunked.boxes.equals(single.boxes)
    assert {"duplicate_source_ref", "malformed_json", "failed_worker", "bad_class_map"} <= {
        r.reason for r in chunked.rejects
    }
    clash = next(r for r in chunked.rejects if r.reason == "bad_class_map")
    assert clash.line == len(items) and "on line 1;" in clash.detail


def test_class_map_with_a_non_text_name_is_rejected(tmp_path: Path) -> None:
    odd = record("s3://b/odd.jpg", [box(7, 1, 1, 5, 5)], class_map={"7": ["screwdriver"]})  # type: ignore[dict-item]
    parsed = parse_manifest(write_manifest(tmp_path / "m", [GOOD, odd]))
    assert reasons_by_line(parsed) == {2: {"bad_class_map"}}


def test_box_check_rejects_also_keep_the_raw_record(tmp_path: Path) -> None:
    bad = record("s3://b/unknown.jpg", [box(5, 1, 1, 5, 5)])
    (reject,) = parse_manifest(
        write_manifest(tmp_path / "m", [GOOD, bad, GOOD | {"source-ref": "s3://b/z.jpg"}])
    ).rejects
    assert reject.reason == "unknown_class_id" and json.loads(reject.record or "") == bad
