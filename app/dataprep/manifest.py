"""Parse and validate a Ground Truth bounding-box ``output.manifest`` (JSON Lines) into pandas frames.

The file is scanned in chunks (in parallel, see ``manifest_scan``) into plain columns, then every cross-record
and box check is vectorised with numpy. Nothing is dropped silently: each problem becomes a :class:`Reject` with
the manifest line number, a reason code and what was expected; rejected records keep their raw text for the
rejects file.

Record-level rejects (the image is left out): malformed JSON, no ``source-ref``, no label attribute (a failed
worker), missing/invalid ``image_size``, ``annotations`` not a list, unsupported image type, duplicate
``source-ref``, a box with missing/non-numeric fields, a class id absent from the class map, a class map that
contradicts an earlier one. Box-level rejects (only the box is dropped; the image stays, possibly as a negative):
zero/negative area, nothing left after clipping to the image. Boxes partly outside the image are clipped and
counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.contracts.dataset import ClassEntry
from app.dataprep.errors import DataprepError
from app.dataprep.manifest_scan import BOX_FIELDS, CHUNK_BYTES, Columns, Reject, scan_manifest

__all__ = [
    "GROUND_TRUTH",
    "ParsedManifest",
    "Reject",
    "Vocabulary",
    "detect_label_attribute",
    "parse_manifest",
    "parsed_from_columns",
]

OBJECT_DETECTION_TYPE = "groundtruth/object-detection"
DETECT_SCAN_RECORDS = 1000  # records inspected to auto-detect the label attribute


@dataclass
class ParsedManifest:
    """The valid part of a manifest plus everything that was rejected or adjusted.

    ``images``: one row per kept image (index 0..n-1): ``line``, ``source_ref``, ``width``, ``height``.
    ``boxes``: one row per kept box: ``image`` (row of ``images``), ``line``, ``cls`` (contiguous YOLO id),
    ``x1 y1 x2 y2`` in pixels, already clipped to the image.
    """

    label_attribute: str
    images: pd.DataFrame
    boxes: pd.DataFrame
    classes: list[ClassEntry]
    rejects: list[Reject] = field(default_factory=list)
    clipped_lines: list[int] = field(default_factory=list)
    records: int = 0  # non-blank lines read (COCO, YOLO: image records, plus annotations naming no image)
    label_format: str = "groundtruth"


@dataclass(frozen=True)
class Vocabulary:
    """How a label format names things in reject messages (the checks are the same for every format)."""

    box: str  # e.g. "annotation" -> "annotation 3: ..."
    class_field: str
    class_list: str
    record: str  # e.g. "line" -> "already labelled on line 4"


GROUND_TRUTH = Vocabulary(box="annotation", class_field="class_id", class_list="the class-map", record="line")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` for non-blank lines, numbered from 1 like an editor."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                yield number, raw


def _first_records(path: Path, scan: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of the first ``scan`` lines that are JSON objects (the record checks report the rest)."""
    taken = 0
    for number, raw in iter_lines(path):
        if taken >= scan:
            return
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            taken += 1
            yield number, record


def detect_label_attribute(path: Path, scan: int = DETECT_SCAN_RECORDS) -> str:
    """The key whose ``<key>-metadata.type`` is ``groundtruth/object-detection``; exactly one must exist."""
    found: dict[str, int] = {}
    records = list(_first_records(path, scan))
    seen = len(records)
    for number, record in records:
        for key, value in record.items():
            if (
                key.endswith("-metadata")
                and isinstance(value, dict)
                and value.get("type") == OBJECT_DETECTION_TYPE
            ):
                found.setdefault(key[: -len("-metadata")], number)
    if not found:
        raise DataprepError(
            f"{path}: no label attribute found in the first {seen} records; expected a key whose "
            f"'<key>-metadata.type' is '{OBJECT_DETECTION_TYPE}' (or pass --label-attribute)"
        )
    if len(found) > 1:
        names = ", ".join(f"'{k}' (line {n})" for k, n in sorted(found.items(), key=lambda kv: kv[1]))
        raise DataprepError(
            f"{path}: several object-detection label attributes: {names}; pass --label-attribute to choose one"
        )
    return next(iter(found))


def check_label_attribute(path: Path, attr: str, scan: int = DETECT_SCAN_RECORDS) -> None:
    """A named label attribute must be in the manifest; else name the attributes that are (a typo would otherwise
    reject every record as a failed worker)."""
    detected: list[str] = []
    keys: list[str] = []
    records = list(_first_records(path, scan))
    seen = len(records)
    for _, record in records:
        if attr in record or f"{attr}-metadata" in record:
            return
        for key, value in record.items():
            if key.endswith("-metadata") and isinstance(value, dict):
                name = key[: -len("-metadata")]
                kind = detected if value.get("type") == OBJECT_DETECTION_TYPE else keys
                if name not in kind:
                    kind.append(name)
    if not detected and not keys:
        return  # no labels at all: the record checks report it, line by line
    present = ", ".join(f"'{k}'" for k in detected) or "none"
    others = f"; other label attributes: {', '.join(repr(k) for k in keys)}" if keys else ""
    raise DataprepError(
        f"{path}: --label-attribute '{attr}' is in none of the first {seen} records; object-detection "
        f"label attributes present: {present}{others}"
    )


def parse_manifest(
    path: Path,
    label_attribute: str | None = None,
    *,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ParsedManifest:
    """Read ``path`` (a local JSON Lines file) and return the valid boxes/images and every reject."""
    if not path.is_file():
        raise DataprepError(
            f"{path}: manifest not found; expected a Ground Truth output.manifest (JSON Lines)"
        )
    if label_attribute:
        check_label_attribute(path, label_attribute)
    attr = label_attribute or detect_label_attribute(path)
    col = scan_manifest(path, attr, workers=workers, chunk_bytes=chunk_bytes)
    return parsed_from_columns(col, attr, raw_source=path)


def parsed_from_columns(
    col: Columns,
    label_attribute: str,
    *,
    raw_source: Path | None = None,
    vocabulary: Vocabulary = GROUND_TRUTH,
    place_of: Callable[[int], str] | None = None,
    label_format: str = "groundtruth",
) -> ParsedManifest:
    """The checks every label format shares (duplicate images, class ids, box geometry), on scanned columns.

    ``raw_source``: the JSON Lines file whose raw text late record rejects carry; ``place_of``: the place of a
    record (its ``line``) when the format has no meaningful line numbers.
    """
    classes = _class_entries(col.class_map)
    images = pd.DataFrame(
        {
            "line": col.img_line,
            "source_ref": pd.Series(col.img_ref, dtype=object),
            "width": col.img_w,
            "height": col.img_h,
        }
    )
    duplicate_rejects, duplicates = _duplicates(images, vocabulary, place_of)
    boxes, box_rejects, bad_images, clipped = _check_boxes(col, images, classes, vocabulary)
    bad_images = np.union1d(bad_images, duplicates)
    late = duplicate_rejects + box_rejects
    if place_of is not None:
        late = [replace(r, place=place_of(r.line)) for r in late]
    rejects = col.rejects + late
    late_lines = {r.line for r in late if r.scope == "record"} if raw_source else set()
    offsets = dict(zip(col.img_line.tolist(), col.img_offset.tolist(), strict=True)) if late_lines else {}
    if bad_images.size:
        keep = np.ones(len(images), dtype=bool)
        keep[bad_images] = False
        new_index = np.cumsum(keep) - 1
        images = images[keep].reset_index(drop=True)
        boxes = boxes[keep[boxes["image"].to_numpy()]].copy()
        boxes["image"] = new_index[boxes["image"].to_numpy()]
        boxes = boxes.reset_index(drop=True)
    if raw_source is not None:
        rejects = _attach_raw_records(raw_source, rejects, {line: offsets[line] for line in late_lines})
    return ParsedManifest(
        label_attribute=label_attribute,
        images=images,
        boxes=boxes,
        classes=classes,
        rejects=sorted(rejects, key=lambda r: (r.line, r.scope)),
        clipped_lines=clipped,
        records=col.records,
        label_format=label_format,
    )


def _duplicates(
    images: pd.DataFrame, vocabulary: Vocabulary, place_of: Callable[[int], str] | None
) -> tuple[list[Reject], np.ndarray]:
    """Later records of an already-seen source-ref are rejected; the first one is kept."""
    refs = images["source_ref"]
    dup = refs.duplicated(keep="first").to_numpy()
    if not dup.any():
        return [], np.zeros(0, dtype=np.int64)
    lines = images["line"].to_numpy()
    first_line = dict(zip(refs[~dup], lines[~dup], strict=True))
    rows = np.flatnonzero(dup)
    rejects = [
        Reject(
            int(lines[i]),
            "duplicate_source_ref",
            f"'{refs.iat[i]}' already labelled "
            + (
                f"at {place_of(first_line[refs.iat[i]])}"
                if place_of
                else f"on {vocabulary.record} {first_line[refs.iat[i]]}"
            )
            + "; expected each image once",
            source_ref=refs.iat[i],
        )
        for i in rows
    ]
    return rejects, rows


def _class_entries(class_map: dict[str, str]) -> list[ClassEntry]:
    """Contiguous YOLO ids in ascending order of the original Ground Truth ids (stable across runs)."""
    ordered = sorted(class_map.items(), key=lambda kv: int(kv[0]))
    return [ClassEntry(id=i, name=name, source_id=sid) for i, (sid, name) in enumerate(ordered)]


def _check_boxes(
    col: Columns, images: pd.DataFrame, classes: list[ClassEntry], vocabulary: Vocabulary = GROUND_TRUTH
) -> tuple[pd.DataFrame, list[Reject], np.ndarray, list[int]]:
    """Vectorised box checks: bad fields / unknown class reject the image; empty boxes are dropped."""
    img = col.box_img
    ann = col.box_ann
    cls_raw, left, top, width, height = col.box_vals
    lines = images["line"].to_numpy()[img] if img.size else np.zeros(0, dtype=np.int64)
    refs = images["source_ref"].to_numpy()
    img_w = images["width"].to_numpy()[img].astype(np.float64) if img.size else np.zeros(0)
    img_h = images["height"].to_numpy()[img].astype(np.float64) if img.size else np.zeros(0)
    rejects: list[Reject] = []

    def report(mask: np.ndarray, reason: str, scope: str, detail_of: object) -> None:
        for i in np.flatnonzero(mask):
            rejects.append(Reject(int(lines[i]), reason, detail_of(i), scope, refs[img[i]]))  # type: ignore[operator]

    finite = (
        np.isfinite(cls_raw) & np.isfinite(left) & np.isfinite(top) & np.isfinite(width) & np.isfinite(height)
    )
    bad_fields = ~finite | (np.nan_to_num(cls_raw) != np.floor(np.nan_to_num(cls_raw)))
    report(
        bad_fields,
        "bad_box",
        "record",
        lambda i: (
            f"{vocabulary.box} {ann[i]}: expected numeric {', '.join(BOX_FIELDS)} with an integer class_id"
        ),
    )
    source_ids = np.array([int(c.source_id) for c in classes], dtype=np.int64)
    cls_int = np.where(bad_fields, -1, np.nan_to_num(cls_raw)).astype(np.int64)
    pos = np.searchsorted(source_ids, cls_int)
    pos_clipped = np.minimum(pos, max(len(source_ids) - 1, 0))
    known = (
        (pos < len(source_ids)) & (source_ids[pos_clipped] == cls_int)
        if source_ids.size
        else np.zeros_like(bad_fields)
    )
    unknown = ~bad_fields & ~known
    known_ids = ",".join(c.source_id for c in classes) or "(none)"
    report(
        unknown,
        "unknown_class_id",
        "record",
        lambda i: (
            f"{vocabulary.box} {ann[i]}: {vocabulary.class_field} {cls_int[i]} is not in {vocabulary.class_list}; "
            f"expected one of {known_ids}"
        ),
    )
    bad_images = np.unique(img[bad_fields | unknown])

    ok = ~(bad_fields | unknown)
    zero = ok & ((width <= 0) | (height <= 0))
    report(
        zero,
        "zero_area",
        "box",
        lambda i: f"{vocabulary.box} {ann[i]}: width={width[i]:g}, height={height[i]:g}; expected both > 0",
    )
    x1 = np.clip(left, 0, img_w)
    y1 = np.clip(top, 0, img_h)
    x2 = np.clip(left + width, 0, img_w)
    y2 = np.clip(top + height, 0, img_h)
    empty = ok & ~zero & ((x2 <= x1) | (y2 <= y1))
    report(
        empty,
        "out_of_bounds",
        "box",
        lambda i: (
            f"{vocabulary.box} {ann[i]}: box left={left[i]:g} top={top[i]:g} width={width[i]:g} height={height[i]:g} "
            f"lies outside the {img_w[i]:g}x{img_h[i]:g} image; expected some overlap"
        ),
    )
    keep = ok & ~zero & ~empty
    clipped_mask = keep & ((x1 != left) | (y1 != top) | (x2 != left + width) | (y2 != top + height))
    clipped = sorted({int(v) for v in lines[clipped_mask]})
    remap = pos_clipped  # index into the sorted source ids == contiguous YOLO id
    boxes = pd.DataFrame(
        {
            "image": img[keep],
            "line": lines[keep],
            "cls": remap[keep].astype(np.int64),
            "x1": x1[keep],
            "y1": y1[keep],
            "x2": x2[keep],
            "y2": y2[keep],
        }
    )
    return boxes, rejects, bad_images, clipped


def _attach_raw_records(path: Path, rejects: list[Reject], line_offsets: dict[int, int]) -> list[Reject]:
    """Fill ``record`` with the raw manifest text of record-level rejects found after the scan."""
    wanted = {r.line for r in rejects if r.scope == "record" and r.record is None and r.line in line_offsets}
    if not wanted:
        return rejects
    raw: dict[int, str] = {}
    with open(path, "rb") as handle:
        for line in sorted(wanted):
            handle.seek(line_offsets[line])
            raw[line] = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    return [replace(r, record=raw[r.line]) if r.line in wanted and r.record is None else r for r in rejects]
