"""Sample images for the serving tests: real photos shipped inside the ultralytics package and a generated scene."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

from PIL import Image, ImageDraw


def ultralytics_asset(name: str) -> bytes:
    """A real photo shipped inside the ultralytics package (read as a file; serving never imports ultralytics)."""
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin is not None
    return (Path(spec.origin).parent / "assets" / name).read_bytes()


def generated_image(width: int = 480, height: int = 320, fmt: str = "PNG") -> bytes:
    """A synthetic scene: coloured shapes on a gradient-free background."""
    img = Image.new("RGB", (width, height), (40, 120, 60))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 50, 180, 260), fill=(200, 30, 30))
    draw.ellipse((250, 80, 420, 250), fill=(240, 220, 40))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as stored, which the contract's ``image`` answers for a photo without EXIF rotation."""
    with Image.open(io.BytesIO(data)) as img:
        return img.size
