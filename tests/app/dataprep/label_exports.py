"""The same labels in the three formats: Ground Truth manifest records written out as a COCO detection JSON and as a
YOLO folder (what CVAT, Label Studio or Roboflow would export), for the format-equivalence tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from app.dataprep.yolo import format_label_lines, to_yolo
from tests.app.dataprep.ground_truth import ATTR, CLASS_MAP, realistic_records, write_manifest

SIZE = (64, 48)


def local_records(images: Path) -> list[dict[str, Any]]:
    """realistic_records() (minus the failed worker, which only a manifest can express) with local image paths
    under ``images/{train,val}/...`` (YOLO folders come split; data prep splits again) and the images written."""
    items, _ = realistic_records()
    out = []
    for n, item in enumerate(i for i in items if isinstance(i, dict) and ATTR in i):
        key = item["source-ref"].split("/raw/", 1)[1]
        path = images / ("val" if n % 4 == 0 else "train") / key
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", SIZE, ((40 * n) % 255, 90, 160)).save(
            path, format="PNG" if key.endswith(".png") else "JPEG"
        )
        out.append({**item, "source-ref": str(path)})
    return out


def write_groundtruth(path: Path, records: list[dict[str, Any]]) -> Path:
    return write_manifest(path, list(records))


def coco_document(records: list[dict[str, Any]], image_base: Path) -> dict[str, Any]:
    """COCO: sparse image ids, category ids = the class-map ids, bbox = the Ground Truth box (pixels, top-left)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for n, record in enumerate(records):
        image_id = 100 + 7 * n
        size = record[ATTR]["image_size"][0]
        images.append(
            {
                "id": image_id,
                "file_name": str(Path(record["source-ref"]).relative_to(image_base)),
                "width": size["width"],
                "height": size["height"],
            }
        )
        for a in record[ATTR]["annotations"]:
            annotations.append(
                {
                    "id": 1000 + len(annotations),
                    "image_id": image_id,
                    "category_id": a["class_id"],
                    "bbox": [a["left"], a["top"], a["width"], a["height"]],
                    "area": a["width"] * a["height"],
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    categories = [{"id": int(k), "name": v, "supercategory": "tool"} for k, v in CLASS_MAP.items()]
    # annotations first: the order of the top-level keys is the exporter's choice
    return {
        "info": {"description": "test"},
        "annotations": annotations,
        "images": images,
        "categories": categories,
    }


def write_coco(path: Path, records: list[dict[str, Any]], image_base: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_document(records, image_base), indent=1))
    return path


def write_yolo(root: Path, records: list[dict[str, Any]]) -> Path:
    """labels/ beside images/ (ultralytics' img2label_paths), boxes clipped and normalised, names by index."""
    ids = sorted(int(k) for k in CLASS_MAP)
    for record in records:
        image = Path(record["source-ref"])
        label = Path(str(image).replace("/images/", "/labels/", 1)).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        anns = record[ATTR]["annotations"]
        w, h = SIZE
        if anns:
            v = np.array([[a["left"], a["top"], a["width"], a["height"]] for a in anns], dtype=np.float64)
            x1, y1 = np.clip(v[:, 0], 0, w), np.clip(v[:, 1], 0, h)
            x2, y2 = np.clip(v[:, 0] + v[:, 2], 0, w), np.clip(v[:, 1] + v[:, 3], 0, h)
            cls = np.array([ids.index(a["class_id"]) for a in anns])
            label.write_text(
                format_label_lines(cls, to_yolo(x1, y1, x2, y2, np.full(len(anns), w), np.full(len(anns), h)))
            )
        # an image with no boxes gets no label file: YOLO's way to say "negative"
    data = root / "data.yaml"
    names = {i: CLASS_MAP[str(k)] for i, k in enumerate(ids)}
    data.write_text(
        yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val", "names": names})
    )
    return data
