"""Real-size verification applies EXIF orientation before comparing with image_size."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from app.dataprep.plan import PlanOptions, build_plan
from app.dataprep.storage import ImageSource
from app.dataprep.verify import oriented_size, size_checker
from tests.app.dataprep.ground_truth import box, record, write_manifest


def jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    img = Image.new("RGB", size, (10, 20, 30))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_rotated_exif_swaps_width_and_height() -> None:
    assert oriented_size(jpeg((60, 40), orientation=6)) == (40, 60)
    assert oriented_size(jpeg((60, 40))) == (60, 40)


def test_mismatched_size_is_rejected_with_its_line(tmp_path: Path) -> None:
    root = tmp_path / "img"
    (root / "k").mkdir(parents=True)
    for name in ("ok1", "ok2", "ok3"):
        (root / "k" / f"{name}.jpg").write_bytes(jpeg((64, 48)))
    (root / "k" / "rot.jpg").write_bytes(jpeg((64, 48), orientation=6))  # displayed as 48x64
    refs = ["ok1", "ok2", "ok3", "rot"]
    manifest = write_manifest(
        tmp_path / "m", [record(f"s3://bkt/k/{r}.jpg", [box(7, 1, 1, 5, 5)]) for r in refs]
    )
    check = size_checker(ImageSource(root), workers=2)
    plan = build_plan(manifest, PlanOptions(val_fraction=0.34, max_reject_fraction=1), size_check=check)
    assert [(r.line, r.reason) for r in plan.rejects] == [(4, "size_mismatch")]
    assert len(plan.images) == 3
