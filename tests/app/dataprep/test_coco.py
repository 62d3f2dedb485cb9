"""COCO detection JSON: bad records are rejected with the annotation/image id named; broken files are one-line
errors with line and column; the streaming reader decodes the same elements whatever its chunk size. ~3 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.dataprep.cli import main
from app.dataprep.coco import read_coco
from app.dataprep.coco_stream import iter_coco
from app.dataprep.errors import DataprepError

CATEGORIES = [{"id": 1, "name": "drill"}, {"id": 4, "name": "hammer"}]


def image(image_id: int) -> dict[str, Any]:
    return {"id": image_id, "file_name": f"img{image_id}.jpg", "width": 100, "height": 80}


def ann(ann_id: int, image_id: int, bbox: list[Any], category: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": bbox, "iscrowd": 0, **extra}


def write(path: Path, images: list[Any], annotations: list[Any], categories: list[Any] = CATEGORIES) -> Path:
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def messages(path: Path) -> list[str]:
    return [r.message("x.json") for r in read_coco(path, image_base="s3://bucket-a/raw").rejects]


def test_boxes_classes_and_images_follow_the_ultralytics_conventions(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        [image(5), image(9)],
        [
            ann(1, 5, [10, 20, 30, 40], category=4),
            ann(2, 5, [0, 0, 5, 5]),
            ann(3, 5, [1, 1, 2, 2], iscrowd=1),
        ],
    )
    parsed = read_coco(path, image_base="s3://bucket-a/raw/")
    assert [(c.id, c.name, c.source_id) for c in parsed.classes] == [(0, "drill", "1"), (1, "hammer", "4")]
    assert parsed.images["source_ref"].tolist() == [
        "s3://bucket-a/raw/img5.jpg",
        "s3://bucket-a/raw/img9.jpg",
    ]
    boxes = parsed.boxes[["image", "cls", "x1", "y1", "x2", "y2"]].values.tolist()
    assert boxes == [[0, 1, 10, 20, 40, 60], [0, 0, 0, 0, 5, 5]]  # top-left x,y,w,h; image 9 is a negative
    (crowd,) = parsed.rejects
    assert (crowd.reason, crowd.scope, crowd.place) == (
        "crowd_region",
        "skip",
        "annotation id 3 (image id 5)",
    )


def test_dangling_image_id_is_rejected_naming_the_annotation(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json", [image(1), image(2)], [ann(7, 1, [1, 1, 5, 5]), ann(8, 99, [1, 1, 5, 5])]
    )
    assert messages(path) == [
        "x.json: annotation id 8: dangling_image_id: image_id 99 is not in 'images'; expected the id of an image record"
    ]


def test_negative_box_is_dropped_naming_annotation_and_image(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json", [image(1), image(2)], [ann(7, 1, [10, 10, -5, 8]), ann(8, 1, [1, 1, 5, 5])]
    )
    parsed = read_coco(path, image_base="/data")
    assert len(parsed.images) == 2 and len(parsed.boxes) == 1  # only the box goes
    assert [r.message("x.json") for r in parsed.rejects] == [
        "x.json: image id 1: zero_area: annotation id 7: width=-5, height=8; expected both > 0"
    ]


def test_unknown_category_rejects_the_image(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [image(1), image(2)], [ann(7, 1, [1, 1, 5, 5], category=42)])
    parsed = read_coco(path, image_base="/data")
    assert parsed.images["source_ref"].tolist() == ["/data/img2.jpg"]
    assert [r.message("x.json") for r in parsed.rejects] == [
        "x.json: image id 1: unknown_class_id: annotation id 7: category_id 42 is not in 'categories'; "
        "expected one of 1,4"
    ]


def test_malformed_annotation_and_duplicate_image_id_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        [image(1), image(2), image(2), {"id": 3, "file_name": "x.jpg"}],
        [ann(7, 1, [1, 1, "wide", 5]), "oops"],
    )
    found = messages(path)
    assert any(m.startswith("x.json: annotation id 7 (image id 1): bad_box: ") for m in found), found
    assert "x.json: annotations[1]: bad_annotation: expected an object, got str" in found
    assert any(m.startswith("x.json: image id 2: duplicate_image_id: ") for m in found), found
    assert any(m.startswith("x.json: image id 3: bad_image: width None, height None") for m in found), found


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("not json at all", "line 1 column 1"),
        ('{"images": [{"id": 1},\n {"id": 2,,}]}', "line 2 column 11"),
        ('{"images": [], "annotations": [', "line 1 column 32"),
    ],
)
def test_a_file_that_is_not_json_is_one_line_naming_the_place(
    tmp_path: Path, text: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(DataprepError, match=f"{path}: {where}: not valid JSON"):
        read_coco(path, image_base="/data")
    code = main(["--labels", str(path), "--format", "coco", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and where in err


def test_missing_categories_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"images": [image(1)], "annotations": []}))
    with pytest.raises(DataprepError, match="no 'categories' list"):
        read_coco(path, image_base="/data")


def test_streaming_decodes_the_same_elements_at_any_chunk_size(tmp_path: Path) -> None:
    doc = {
        "info": {"year": 2024, "note": 'a "quoted" \\ string, with [brackets] and {braces}'},
        "images": [image(i) for i in range(20)],
        "annotations": [ann(i, i % 20, [i * 1.5, 2, 1234567.25, 3e-5]) for i in range(50)],
        "categories": CATEGORIES,
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc, indent=2))
    for chunk in (1, 3, 7, 64, 1 << 20):
        got: dict[str, list[Any]] = {}
        for key, _, element in iter_coco(path, chunk=chunk):
            got.setdefault(key, []).append(element)
        assert got == {k: ([v] if k == "info" else v) for k, v in doc.items()}, chunk


def test_non_finite_numbers_json_allows_are_a_bad_box(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    body = json.dumps({"images": [image(1), image(2)], "categories": CATEGORIES})[:-1]
    path.write_text(
        body + ', "annotations": [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 3]}]}'
    )
    parsed = read_coco(path, image_base="/data")
    assert parsed.images["source_ref"].tolist() == ["/data/img2.jpg"]
    (reject,) = parsed.rejects
    assert reject.message("x.json").startswith(
        "x.json: annotation id 3 (image id 1): bad_box: bbox [nan, 1.0, 2.0, 3.0]"
    )
