"""Optional check of each image's real size (EXIF orientation applied) against the manifest's ``image_size``.

Ground Truth workers draw on the displayed (EXIF-rotated) image, and ultralytics also applies EXIF orientation,
so an image whose oriented size differs from ``image_size`` would get misplaced boxes: it is rejected.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
from PIL import Image, UnidentifiedImageError

from app.dataprep.manifest import Reject
from app.dataprep.storage import ImageSource, run_parallel

_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}  # transpose / rotate 90 / transverse / rotate 270


def oriented_size(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed: the stored size with EXIF orientation applied (header only, no decode)."""
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def size_checker(
    source: ImageSource, *, workers: int = 16, progress: bool = False
) -> Callable[..., list[Reject]]:
    """A ``build_plan`` hook: reads every image header in parallel and returns the mismatches as rejects."""

    def check(images: pd.DataFrame) -> list[Reject]:
        found: list[Reject] = []

        def task(line: int, ref: str, width: int, height: int) -> Callable[[], None]:
            def run() -> None:
                try:
                    real = oriented_size(source.read_bytes(source.resolve(ref)))
                except (OSError, UnidentifiedImageError) as exc:
                    found.append(
                        Reject(line, "unreadable_image", f"cannot read {ref}: {exc}", source_ref=ref)
                    )
                    return
                if real != (width, height):
                    detail = (
                        f"image is {real[0]}x{real[1]} (EXIF orientation applied) but image_size says "
                        f"{width}x{height}; expected them to match"
                    )
                    found.append(Reject(line, "size_mismatch", detail, source_ref=ref))

            return run

        rows = images[["line", "source_ref", "width", "height"]].itertuples(index=False)
        tasks = (task(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows)
        errors = run_parallel(
            tasks, total=len(images), workers=workers, progress=progress, desc="verify sizes"
        )
        for message in errors:  # S3 errors and the like: reported as unreadable, never skipped
            found.append(Reject(0, "unreadable_image", message))
        return sorted(found, key=lambda r: r.line)

    return check
