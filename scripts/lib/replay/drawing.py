"""One replayed image with both models' boxes drawn (candidate orange, champion blue; a box without a partner in
the other model drawn thicker) and a legend, for a person to look at."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CANDIDATE = (255, 140, 0)
CHAMPION = (30, 110, 255)


def draw(
    rgb: np.ndarray,
    *,
    candidate: Sequence[Mapping[str, Any]],
    champion: Sequence[Mapping[str, Any]],
    candidate_matched: Sequence[bool],
    champion_matched: Sequence[bool],
    legend: tuple[str, str],
) -> bytes:
    """JPEG bytes of ``rgb`` with both sets of contract detections and a legend naming the two models."""
    image = Image.fromarray(rgb)
    canvas = ImageDraw.Draw(image)
    size = max(12, max(image.size) // 60)  # readable on a phone photo and on a thumbnail alike
    font = ImageFont.load_default(size=size)
    thin = max(1, round(max(image.size) / 400))
    for detections, matched, colour in (
        (champion, champion_matched, CHAMPION),
        (candidate, candidate_matched, CANDIDATE),
    ):
        for detection, paired in zip(detections, matched, strict=True):
            box = detection["box"]
            xy = (box["x1"], box["y1"], box["x2"], box["y2"])
            canvas.rectangle(xy, outline=colour, width=thin if paired else 3 * thin)
            canvas.text(
                (xy[0] + 2, xy[1] + 1),
                f"{detection['label']} {detection['confidence']:.2f}",
                fill=colour,
                font=font,
            )
    rows = [
        (f"candidate: {legend[0]}", CANDIDATE),
        (f"champion: {legend[1]}", CHAMPION),
        ("thick: no partner", (255, 255, 255)),
    ]
    line = size + 4
    width = max(int(canvas.textlength(text, font=font)) for text, _ in rows) + 12
    canvas.rectangle((0, 0, width, line * len(rows) + 6), fill=(0, 0, 0))
    for i, (text, colour) in enumerate(rows):
        canvas.text((6, 3 + line * i), text, fill=colour, font=font)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()
