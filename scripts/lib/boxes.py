"""Boxes as people look at them: overlap (IoU), the labelled boxes of a Ground Truth manifest, and a detection
response drawn on its image."""

from __future__ import annotations

import io
import json
from pathlib import Path

from app.contracts.invocation import InvocationResponse

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels


def annotate(image_bytes: bytes, response: InvocationResponse, target: Path) -> None:
    """``image_bytes`` with the response's boxes drawn (label and confidence), saved as JPEG at ``target``."""
    from PIL import Image, ImageDraw, ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(image_bytes))).convert("RGB")
    draw = ImageDraw.Draw(image)
    for det in response.predictions[0].detections:
        box = (det.box.x1, det.box.y1, det.box.x2, det.box.y2)
        draw.rectangle(box, outline=(255, 40, 40), width=3)
        draw.text((det.box.x1 + 3, det.box.y1 + 2), f"{det.label} {det.confidence:.2f}", fill=(255, 255, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, quality=90)


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def labelled_boxes(
    manifest: Path, image_root: Path, label_attribute: str
) -> dict[Path, list[tuple[str, Box]]]:
    """A Ground Truth manifest the demo generated (trusted, well-formed): image path -> [(class name, x1 y1 x2 y2)]."""
    truths: dict[Path, list[tuple[str, Box]]] = {}
    for line in manifest.read_text().splitlines():
        record = json.loads(line)
        key = record["source-ref"].split("/", 3)[3]  # s3://bucket/<key>
        class_map = record[f"{label_attribute}-metadata"]["class-map"]
        truths[image_root / key] = [
            (
                class_map[str(a["class_id"])],
                (a["left"], a["top"], a["left"] + a["width"], a["top"] + a["height"]),
            )
            for a in record[label_attribute]["annotations"]
        ]
    return truths
