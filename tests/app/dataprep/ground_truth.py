"""Builders for Ground Truth output manifest records and tiny image folders, shared by the data prep tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

ATTR = "tools-2024-bbox"
CLASS_MAP = {"0": "drill", "3": "hammer", "7": "screwdriver"}  # sparse on purpose


def box(cls: int, left: float, top: float, width: float, height: float) -> dict[str, Any]:
    return {"class_id": cls, "left": left, "top": top, "width": width, "height": height}


def record(
    ref: str,
    boxes: list[dict[str, Any]] | None = None,
    *,
    size: tuple[int, int] = (64, 48),
    attr: str = ATTR,
    class_map: dict[str, str] | None = None,
) -> dict[str, Any]:
    boxes = boxes or []
    return {
        "source-ref": ref,
        attr: {"image_size": [{"width": size[0], "height": size[1], "depth": 3}], "annotations": boxes},
        f"{attr}-metadata": {
            "objects": [{"confidence": 0.9} for _ in boxes],
            "class-map": CLASS_MAP if class_map is None else class_map,
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2024-05-01T12:00:00.000000",
            "job-name": f"labeling-job/{attr}",
        },
    }


def failed_worker(ref: str, attr: str = ATTR) -> dict[str, Any]:
    return {
        "source-ref": ref,
        f"{attr}-metadata": {
            "failure-reason": "ClientError: Annotation tasks expired",
            "type": "groundtruth/object-detection",
            "job-name": f"labeling-job/{attr}",
        },
    }


def write_manifest(path: Path, items: list[dict[str, Any] | str]) -> Path:
    """Records (dicts) or raw text lines, one per line."""
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items))
    return path


def make_images(root: Path, refs: list[str], size: tuple[int, int] = (64, 48)) -> None:
    """A tiny real image for each s3://bucket/key ref at root/key."""
    for n, ref in enumerate(refs):
        key = ref.split("/", 3)[3]
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if target.suffix.lower() == ".png" else "JPEG"
        Image.new("RGB", size, ((40 * n) % 255, 90, 160)).save(target, format=fmt)


def realistic_records() -> tuple[list[dict[str, Any] | str], list[str]]:
    """Several classes, sparse class map, a failed worker, an out-of-bounds box, negatives, name collisions."""
    items: list[dict[str, Any] | str] = []
    refs: list[str] = []
    for i in range(24):
        folder = "site-a" if i % 2 else "site-b"
        name = f"img{i // 2}.jpg"  # same basename under two prefixes
        ref = f"s3://gt-bucket/raw/{folder}/{name}"
        refs.append(ref)
        boxes = [box(7, 5, 5, 20, 15)]
        if i % 3 == 0:
            boxes.append(box(0, 30, 10, 25, 30))
        if i % 4 == 0:
            boxes.append(box(3, 10, 20, 12, 12))
        if i == 5:
            boxes.append(box(3, 50, 30, 40, 40))  # out of bounds: clipped to the 64x48 image
        items.append(record(ref, [] if i in (7, 15) else boxes))  # two images with no boxes
    dotted = "s3://gt-bucket/raw/site-a/shot.v2.png"
    refs.append(dotted)
    items.append(record(dotted, [box(7, 1, 1, 30, 30)]))
    items.append(failed_worker("s3://gt-bucket/raw/site-a/failed.jpg"))
    return items, refs
