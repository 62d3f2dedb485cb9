"""Dataset contract (dataprep -> training).

A dataset is a self-contained, versioned folder (or S3 prefix with the same keys)::

    images/{train,val[,test]}/<name>.<ext>
    labels/{train,val[,test]}/<name>.txt   # "cls cx cy w h", normalised to [0, 1], 6 decimals; may be empty
    data.yaml                              # ultralytics format, paths relative to the folder
    dataset.json                           # DatasetInfo below

No image is in two splits; a dropped image is dropped with its labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.contracts.errors import ContractError

SCHEMA_VERSION = 1
IMAGES_DIR = "images"
LABELS_DIR = "labels"
DATA_YAML = "data.yaml"
DATASET_JSON = "dataset.json"
TRAIN, VAL, TEST = "train", "val", "test"
SPLITS: tuple[str, ...] = (TRAIN, VAL, TEST)
REQUIRED_SPLITS: tuple[str, ...] = (TRAIN, VAL)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
LABEL_DECIMALS = 6

Split = Literal["train", "val", "test"]


class DatasetLayoutError(ContractError):
    """A dataset folder that training cannot use."""


class ClassEntry(BaseModel):
    """One class: contiguous YOLO id, name, and the id the labels used (Ground Truth class-map id, COCO category
    id, YOLO class index)."""

    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    source_id: str


class ClassCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images: int = Field(ge=0)
    boxes: int = Field(ge=0)


# split -> class name -> counts
SplitCounts = dict[str, dict[str, ClassCount]]


class DatasetInfo(BaseModel):
    """``dataset.json``: what the dataset is, where it came from and what was done to it."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    version: str = Field(min_length=8, description="content hash of images + labels + class list")
    source_manifest: str
    label_attribute: str
    # the labels' format: a Ground Truth output manifest, a COCO detection JSON or a YOLO folder (its data.yaml)
    label_format: Literal["groundtruth", "coco", "yolo"] = "groundtruth"
    classes: list[ClassEntry]
    splits: dict[str, int] = Field(description="split -> number of images")
    counts_before_balancing: SplitCounts
    counts_after_balancing: SplitCounts
    seed: int
    balancing: dict[str, object] = Field(default_factory=dict)
    rejected: dict[str, int] = Field(default_factory=dict, description="reason -> number of records")
    rejects_file: str | None = None

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in sorted(self.classes, key=lambda c: c.id)]


def read_dataset_info(root: Path) -> DatasetInfo:
    """Load and check ``dataset.json`` under ``root``; raise DatasetLayoutError naming the problem."""
    path = root / DATASET_JSON
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: missing; expected the dataset.json written by data prep")
    try:
        info = DatasetInfo.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DatasetLayoutError(f"{path}: field '{field}': {first['msg']}") from None
    ids = sorted(c.id for c in info.classes)
    if not ids or ids != list(range(len(ids))):
        raise DatasetLayoutError(f"{path}: field 'classes': expected contiguous ids 0..n-1, got {ids}")
    return info


def validate_layout(root: Path) -> DatasetInfo:
    """Check that ``root`` is a usable dataset: info, data.yaml, and non-empty train/val image folders."""
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: not a directory; expected a dataset folder written by data prep")
    info = read_dataset_info(root)
    if not (root / DATA_YAML).is_file():
        raise DatasetLayoutError(f"{root / DATA_YAML}: missing; expected the ultralytics data.yaml")
    for split in REQUIRED_SPLITS:
        folder = root / IMAGES_DIR / split
        if not folder.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            raise DatasetLayoutError(f"{folder}: expected at least one image for split '{split}'")
    return info
