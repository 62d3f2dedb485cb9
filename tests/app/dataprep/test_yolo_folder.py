"""YOLO folders (data.yaml) and label-format detection: bad label lines are rejected naming the label file and line;
data.yaml mistakes are one-line errors; ``s3:/`` and other malformed S3 URIs are refused, never used as local
folders. ~2 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from app.dataprep.cli import main
from app.dataprep.errors import DataprepError
from app.dataprep.labels import LabelFormat, detect_local
from app.dataprep.yolo_folder import read_yolo


def folder(root: Path, labels: dict[str, str], names: object = ("cat", "dog")) -> Path:
    for stem, text in labels.items():
        image = root / "images" / "train" / f"{stem}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (100, 50)).save(image)
        if text:
            label = root / "labels" / "train" / f"{stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(text)
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": list(names)}))  # type: ignore[call-overload]
    return root / "data.yaml"


def test_boxes_are_read_in_pixels_and_polygons_become_their_box(tmp_path: Path) -> None:
    data = folder(tmp_path, {"a": "1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.3 0.1 0.3 0.3\n", "b": ""})
    parsed = read_yolo(str(data), workers=2)
    assert parsed.images[["width", "height"]].values.tolist() == [[100, 50], [100, 50]]
    boxes = parsed.boxes[["image", "cls", "x1", "y1", "x2", "y2"]].round(6).values.tolist()
    assert boxes == [[0, 1, 40, 15, 60, 35], [0, 0, 10, 5, 30, 15]]
    assert parsed.rejects == []


def test_bad_label_lines_are_rejected_naming_file_and_line(tmp_path: Path) -> None:
    data = folder(
        tmp_path,
        {"a": "0 0.5 0.5 0.2 0.2\nzero 1 2\n", "b": "0 0.5 1.5 0.2 0.2\n", "c": "5 0.5 0.5 0.1 0.1\n"},
    )
    parsed = read_yolo(str(data), workers=2)
    labels = tmp_path.resolve() / "labels" / "train"
    found = {r.reason: r.message("data.yaml") for r in parsed.rejects}
    assert found["bad_label_line"].startswith(f"data.yaml: {labels}/a.txt:2: bad_label_line: 'zero 1 2'")
    assert found["bad_box"].startswith(
        f"data.yaml: {labels}/b.txt:1: bad_box: '0 0.5 1.5 0.2 0.2': coordinates"
    )
    assert found["unknown_class_id"] == (
        f"data.yaml: {labels}/c.txt: unknown_class_id: label line 1: class 5 is not in data.yaml 'names'; "
        "expected one of 0,1"
    )
    assert parsed.images.empty


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"train": "images/train", "names": "cat"}, "field 'names'"),
        ({"train": "images/train", "names": ["cat"], "nc": 2}, "field 'nc' is 2 but 'names' has 1"),
        ({"names": ["cat"]}, "no 'train'"),
        ({"train": "images/nowhere", "names": ["cat"]}, "no such folder"),
    ],
)
def test_data_yaml_mistakes_are_one_line(tmp_path: Path, doc: dict[str, object], expected: str) -> None:
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(DataprepError, match=expected):
        read_yolo(str(tmp_path / "data.yaml"))


def test_formats_are_detected_from_the_content(tmp_path: Path) -> None:
    gt = tmp_path / "output.manifest"
    gt.write_text('not json\n{"source-ref": "s3://bucket-a/x.jpg"}\n')
    coco = tmp_path / "export.json"  # a name that says nothing
    coco.write_text(json.dumps({"info": {}, "images": [], "annotations": [], "categories": []}, indent=2))
    folder(tmp_path / "yolo", {"a": ""})
    assert detect_local(gt) is LabelFormat.GROUNDTRUTH
    assert detect_local(coco) is LabelFormat.COCO
    assert detect_local(tmp_path / "yolo") is LabelFormat.YOLO
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(DataprepError, match="not JSON or YAML; expected a Ground Truth output manifest"):
        detect_local(other)


@pytest.mark.parametrize(
    "bad", ["s3:/bucket-a/x", "S3://bucket-a/x", "s3://Bucket_A/x", "s3://ab/x", "s3:bucket-a/x"]
)
def test_malformed_s3_uris_are_refused_and_never_become_local_folders(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    data = folder(tmp_path / "yolo", {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n", "c": ""})
    assert main(["--labels", str(data), "--out", bad, "--quiet"]) == 2
    assert not any(p.name.lower().startswith("s3:") for p in tmp_path.iterdir())
    assert main(["--labels", bad, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith(f"error: '{bad}'") for line in err), err
