"""One data prep, three label formats: the same labels as a Ground Truth manifest, a COCO detection JSON and a YOLO
folder make the same dataset (same boxes, same split for the same seed). ~10 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.dataprep.cli import main
from tests.app.dataprep.label_exports import local_records, write_coco, write_groundtruth, write_yolo

OPTIONS = ["--seed", "3", "--val-fraction", "0.25", "--balance", "oversample", "--workers", "2", "--quiet"]
# what only says where the labels came from
SOURCE_FIELDS = {"source_manifest", "label_attribute", "label_format"}


def tree(root: Path) -> dict[str, str]:
    """Every label file's text and every image's name, by relative path."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel.startswith("labels/"):
            out[rel] = path.read_text()
        elif path.is_file() and rel.startswith("images/"):
            out[rel] = str(path.stat().st_size)
    return out


def info(root: Path) -> dict[str, Any]:
    return json.loads((root / "dataset.json").read_text())


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path.resolve() / "data"
    records = local_records(data / "images")
    return {
        "groundtruth": write_groundtruth(tmp_path / "output.manifest", records),
        "coco": write_coco(data / "annotations" / "instances_default.json", records, data / "images"),
        "yolo": write_yolo(data, records),
        "images": data / "images",
    }


def run(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / f"out-{name}"
    assert main(["--out", str(out), *args, *OPTIONS]) == 0
    return out


def test_coco_makes_the_same_dataset_as_the_manifest(exports: dict[str, Path], tmp_path: Path) -> None:
    gt = run(tmp_path, "gt", "--labels", str(exports["groundtruth"]))
    coco = run(tmp_path, "coco", "--labels", str(exports["coco"]), "--image-base", str(exports["images"]))
    assert tree(coco) == tree(gt) and any(k.startswith("labels/val/") for k in tree(gt))
    a, b = info(gt), info(coco)
    assert b["label_format"] == "coco" and a["label_format"] == "groundtruth"
    # category ids 0/3/7 are the class-map ids: even the content version (classes, images, boxes) is the same
    assert {k: v for k, v in b.items() if k not in SOURCE_FIELDS} == {
        k: v for k, v in a.items() if k not in SOURCE_FIELDS
    }


def test_yolo_folder_makes_the_same_dataset_as_the_manifest(exports: dict[str, Path], tmp_path: Path) -> None:
    gt = run(tmp_path, "gt", "--labels", str(exports["groundtruth"]))
    yolo = run(tmp_path, "yolo", "--labels", str(exports["yolo"]))
    assert tree(yolo) == tree(gt)
    a, b = info(gt), info(yolo)
    assert b["label_format"] == "yolo"
    # YOLO classes are indices 0..2 (the manifest's are 0/3/7), so the version differs; the YOLO labels come
    # already clipped, so nothing is clipped again
    differs = SOURCE_FIELDS | {"version", "classes", "boxes_clipped"}
    assert {k: v for k, v in b.items() if k not in differs} == {
        k: v for k, v in a.items() if k not in differs
    }
    assert [c["name"] for c in b["classes"]] == [c["name"] for c in a["classes"]]
    assert (a["boxes_clipped"], b["boxes_clipped"]) == (1, 0)


def test_a_yolo_folder_can_be_named_by_its_folder(exports: dict[str, Path], tmp_path: Path) -> None:
    by_yaml = run(tmp_path, "yaml", "--labels", str(exports["yolo"]))
    by_folder = run(tmp_path, "folder", "--labels", str(exports["yolo"].parent))
    assert tree(by_folder) == tree(by_yaml)


def test_format_can_be_forced_and_a_wrong_one_is_a_one_line_error(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    code = main(["--labels", str(exports["coco"]), "--format", "groundtruth", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and not out.exists()


def test_options_of_another_format_are_refused(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--labels", str(exports["yolo"]), "--image-base", "/x", "--out", str(tmp_path / "o")])
    assert code == 2 and "--image-base: only for COCO files; the labels are yolo" in capsys.readouterr().err


def test_a_malformed_image_base_is_refused_before_reading(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--labels",
            str(exports["coco"]),
            "--image-base",
            "s3:/bucket-a/images",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "error: 's3:/bucket-a/images' is not an S3 URI" in capsys.readouterr().err
