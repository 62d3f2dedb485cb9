"""Make ultralytics work without network (SageMaker network isolation): call before importing ultralytics.

ultralytics otherwise checks for updates, pip-installs missing packages and downloads Arial.ttf for every plot.
Settings already in the environment (the Dockerfile sets them) win; a font is copied from matplotlib's own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def go_offline(work_dir: Path | None = None) -> None:
    base = work_dir or Path(tempfile.gettempdir()) / "yolo-train"
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(base / "ultralytics"))
    os.environ.setdefault("MPLCONFIGDIR", str(base / "matplotlib"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    font = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" / "Arial.ttf"
    if not font.exists():
        import matplotlib

        font.parent.mkdir(parents=True, exist_ok=True)
        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        tmp = font.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, font)  # atomic: DDP workers may race here
