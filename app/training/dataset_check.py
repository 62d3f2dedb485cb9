"""Fail fast on a dataset training cannot use, naming the file and line, before any GPU time is spent.

Checks the contract of app.contracts.dataset (dataset.json, data.yaml, non-empty train/val) plus every label line
(``cls cx cy w h``, class id in range, coordinates in [0, 1]), then writes the data yaml ultralytics reads, with an
absolute ``path`` (ultralytics resolves a relative one against its own datasets dir, not the yaml's folder).
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from app.contracts.dataset import (
    DATA_YAML,
    IMAGES_DIR,
    LABELS_DIR,
    SPLITS,
    TEST,
    TRAIN,
    VAL,
    DatasetInfo,
    DatasetLayoutError,
    validate_layout,
)


def _check_data_yaml(root: Path, info: DatasetInfo) -> None:
    path = root / DATA_YAML
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DatasetLayoutError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or "names" not in data:
        raise DatasetLayoutError(f"{path}: expected a mapping with 'names' (ultralytics data.yaml)")
    names = data["names"]
    listed = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    if listed != info.class_names:
        raise DatasetLayoutError(
            f"{path}: field 'names' {listed} does not match dataset.json classes {info.class_names}"
        )


def _check_label_file(path: Path, nc: int) -> int:
    """Return the number of boxes; raise naming file:line on the first bad line."""
    boxes = 0
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{lineno}"
        if len(parts) != 5:
            raise DatasetLayoutError(
                f"{where}: expected 'cls cx cy w h' (5 fields), got {len(parts)}: {line!r}"
            )
        try:
            cls = int(parts[0])
            coords = [float(p) for p in parts[1:]]
        except ValueError:
            raise DatasetLayoutError(
                f"{where}: expected an integer class id and 4 numbers, got {line!r}"
            ) from None
        if not 0 <= cls < nc:
            raise DatasetLayoutError(f"{where}: class id {cls} out of range; dataset.json has {nc} classes")
        if not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in coords):
            raise DatasetLayoutError(f"{where}: coordinates must be normalised to [0, 1], got {parts[1:]}")
        boxes += 1
    return boxes


def check_dataset(root: Path) -> DatasetInfo:
    """Validate the dataset folder; return its DatasetInfo or raise DatasetLayoutError."""
    info = validate_layout(root)
    _check_data_yaml(root, info)
    nc = len(info.classes)
    for split in SPLITS:
        folder = root / LABELS_DIR / split
        if split in (TRAIN, VAL) and not folder.is_dir():
            raise DatasetLayoutError(
                f"{folder}: missing; expected one label .txt per image of split '{split}'"
            )
        boxes = sum(_check_label_file(p, nc) for p in sorted(folder.glob("*.txt"))) if folder.is_dir() else 0
        if split == TRAIN and boxes == 0:
            raise DatasetLayoutError(f"{folder}: no boxes in any label file; nothing to train on")
    return info


def write_training_yaml(root: Path, info: DatasetInfo, out: Path) -> Path:
    """The data yaml ultralytics reads: absolute dataset path, class names in id order from dataset.json."""
    data: dict[str, object] = {
        "path": str(root.resolve()),
        TRAIN: f"{IMAGES_DIR}/{TRAIN}",
        VAL: f"{IMAGES_DIR}/{VAL}",
        "names": dict(enumerate(info.class_names)),
    }
    if (root / IMAGES_DIR / TEST).is_dir():
        data[TEST] = f"{IMAGES_DIR}/{TEST}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out
