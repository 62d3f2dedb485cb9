"""Which label format a file is, and reading it into the records every later step shares.

Three formats, detected from the content (``--format`` overrides): a Ground Truth output manifest (JSON Lines whose
records have ``source-ref``), a COCO detection JSON (one object with ``images``/``annotations``/``categories``) and
a YOLO dataset (its ``data.yaml``, or the folder holding it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from app.dataprep.errors import DataprepError

HEAD_BYTES = 64 * 1024  # what detection reads of a file
HEAD_LINES = 20  # Ground Truth: the first lines, any of which may be a failed/odd record
_COCO_KEY = re.compile(rb'"(images|annotations|categories)"\s*:\s*\[')
YAML_SUFFIXES = (".yaml", ".yml")
DATA_YAML = "data.yaml"


class LabelFormat(StrEnum):
    GROUNDTRUTH = "groundtruth"
    COCO = "coco"
    YOLO = "yolo"


EXPECTED = (
    "expected a Ground Truth output manifest (JSON Lines with 'source-ref'), a COCO detection JSON (an object "
    "with 'images', 'annotations' and 'categories') or a YOLO data.yaml"
)


def format_of_name(name: str) -> LabelFormat | None:
    """What the name alone says: a ``.yaml``/``.yml`` file is a YOLO data.yaml."""
    return LabelFormat.YOLO if name.lower().endswith(YAML_SUFFIXES) else None


def detect_format(head: bytes, name: str) -> LabelFormat:
    """The format of a label file from its name and first bytes; DataprepError naming the file when it is none."""
    by_name = format_of_name(name)
    if by_name:
        return by_name
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for raw in text.split(b"\n")[:HEAD_LINES]:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and "source-ref" in record:
            return LabelFormat.GROUNDTRUTH
        if isinstance(record, dict) and {"images", "annotations", "categories"} & record.keys():
            return LabelFormat.COCO  # a COCO file written on one line
    if text.startswith(b"{") and _COCO_KEY.search(text):
        return LabelFormat.COCO
    if not text.startswith(b"{"):
        shown = text[:40].decode("utf-8", errors="replace")
        raise DataprepError(f"{name}: starts with {shown!r}, not JSON or YAML; {EXPECTED}")
    raise DataprepError(
        f"{name}: JSON, but neither of the label formats in its first {len(head)} bytes; {EXPECTED}"
    )


def detect_local(path: Path) -> LabelFormat:
    """Detect the format of a local file or folder (a folder must hold a data.yaml)."""
    if path.is_dir():
        if (path / DATA_YAML).is_file():
            return LabelFormat.YOLO
        raise DataprepError(f"{path}: a folder without {DATA_YAML}; {EXPECTED}")
    if not path.is_file():
        raise DataprepError(f"{path}: not found; {EXPECTED}")
    with open(path, "rb") as handle:
        return detect_format(handle.read(HEAD_BYTES), str(path))


def image_locations(local: Path, name: str, fmt: LabelFormat, *, image_base: str) -> Iterator[str]:
    """Every image location a Ground Truth or COCO label file names (local copy ``local``, shown as ``name``), in
    file order and without holding the file in memory; for a launcher to check them before it starts a job."""
    if fmt is LabelFormat.GROUNDTRUTH:
        from orjson import loads

        with open(local, "rb") as handle:
            for raw in handle:
                try:
                    record = loads(raw)
                except ValueError:
                    continue  # the job reports it as a rejected line; no image to check
                ref = record.get("source-ref") if isinstance(record, dict) else None
                if isinstance(ref, str) and ref:
                    yield ref
    elif fmt is LabelFormat.COCO:
        from app.dataprep.coco import image_uri
        from app.dataprep.coco_stream import iter_coco

        for key, _, element in iter_coco(local):
            if key == "images" and isinstance(element, dict) and isinstance(element.get("file_name"), str):
                yield image_uri(image_base, element["file_name"])
    else:
        raise DataprepError(
            f"{name}: image_locations reads files; a YOLO data.yaml names folders (read_data_yaml)"
        )
