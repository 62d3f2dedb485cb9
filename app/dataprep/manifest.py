"""Parse and validate a Ground Truth bounding-box ``output.manifest`` (JSON Lines) into pandas frames.

One streaming pass over the file collects plain columns (no per-record objects are kept), then every box check
is vectorised with numpy. Nothing is dropped silently: each problem becomes a :class:`Reject` with the manifest
line number, a reason code and what was expected; rejected records keep their raw text for the rejects file.

Record-level rejects (the image is left out): malformed JSON, no ``source-ref``, no label attribute (a failed
worker), missing/invalid ``image_size``, ``annotations`` not a list, unsupported image type, duplicate
``source-ref``, a box with missing/non-numeric fields, a class id absent from the class map. Box-level rejects (only
the box is dropped; the image stays, possibly as a negative): zero/negative area, nothing left after clipping to
the image. Boxes partly outside the image are clipped and counted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.contracts.dataset import IMAGE_SUFFIXES, ClassEntry
from app.dataprep.errors import DataprepError

OBJECT_DETECTION_TYPE = "groundtruth/object-detection"
DETECT_SCAN_RECORDS = 1000  # records inspected to auto-detect the label attribute
_BOX_FIELDS = ("class_id", "left", "top", "width", "height")


@dataclass(frozen=True)
class Reject:
    """One problem found in the manifest: where, what kind, what was expected; ``scope`` is record or box."""

    line: int
    reason: str
    detail: str
    scope: str = "record"
    source_ref: str | None = None
    record: str | None = None  # the raw manifest line (filled in for record-level rejects)

    def message(self, manifest: str) -> str:
        return f"{manifest}:{self.line}: {self.reason}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


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
    records: int = 0  # non-blank lines read

    @property
    def rejected_records(self) -> int:
        return len({r.line for r in self.rejects if r.scope == "record"})

    @property
    def affected_records(self) -> int:
        """Records that lost anything (the whole record or some of its boxes)."""
        return len({r.line for r in self.rejects})


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` for non-blank lines, numbered from 1 like an editor."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                yield number, raw


def detect_label_attribute(path: Path, scan: int = DETECT_SCAN_RECORDS) -> str:
    """The key whose ``<key>-metadata.type`` is ``groundtruth/object-detection``; exactly one must exist."""
    found: dict[str, int] = {}
    seen = 0
    for number, raw in iter_lines(path):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        seen += 1
        for key, value in record.items():
            if (
                key.endswith("-metadata")
                and isinstance(value, dict)
                and value.get("type") == OBJECT_DETECTION_TYPE
            ):
                found.setdefault(key[: -len("-metadata")], number)
        if seen >= scan:
            break
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


def _positive_int(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and value == int(value)
    )


class _Collector:
    """Column lists filled during the streaming pass (lists of scalars are far cheaper than frames per row)."""

    def __init__(self) -> None:
        self.img_line: list[int] = []
        self.img_ref: list[str] = []
        self.img_w: list[int] = []
        self.img_h: list[int] = []
        self.box_img: list[int] = []
        self.box_ann: list[int] = []
        self.box_cols: tuple[list[object], ...] = tuple([] for _ in _BOX_FIELDS)
        self.rejects: list[Reject] = []
        self.class_map: dict[str, str] = {}
        self.class_map_line: dict[str, int] = {}


def parse_manifest(path: Path, label_attribute: str | None = None) -> ParsedManifest:
    """Read ``path`` (a local JSON Lines file) and return the valid boxes/images and every reject."""
    if not path.is_file():
        raise DataprepError(
            f"{path}: manifest not found; expected a Ground Truth output.manifest (JSON Lines)"
        )
    attr = label_attribute or detect_label_attribute(path)
    meta_key = f"{attr}-metadata"
    col = _Collector()
    seen_refs: dict[str, int] = {}
    last_map: object = None
    records = 0
    box_img_append, box_ann_append = col.box_img.append, col.box_ann.append
    c_app, l_app, t_app, w_app, h_app = (c.append for c in col.box_cols)
    reject = col.rejects.append

    for number, raw in iter_lines(path):
        records += 1
        try:
            record = json.loads(raw)
        except ValueError as exc:
            detail = (
                f"not valid JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')}); "
                "expected one JSON object per line"
            )
            reject(Reject(number, "malformed_json", detail))
            continue
        if not isinstance(record, dict):
            reject(
                Reject(
                    number, "malformed_json", f"expected a JSON object per line, got {type(record).__name__}"
                )
            )
            continue
        ref = record.get("source-ref")
        if not isinstance(ref, str) or not ref:
            reject(Reject(number, "missing_source_ref", "expected 'source-ref' with an image URI"))
            continue
        label = record.get(attr)
        if not isinstance(label, dict):
            meta = record.get(meta_key)
            why = meta.get("failure-reason") if isinstance(meta, dict) else None
            detail = f"no '{attr}' label object; expected a worker answer (failed worker?)" + (
                f": {why}" if why else ""
            )
            reject(Reject(number, "failed_worker", detail, source_ref=ref))
            continue
        sizes = label.get("image_size")
        size = sizes[0] if isinstance(sizes, list) and sizes and isinstance(sizes[0], dict) else None
        if size is None or not (_positive_int(size.get("width")) and _positive_int(size.get("height"))):
            detail = f'expected \'{attr}.image_size\' as [{{"width": >0, "height": >0}}], got {sizes!r}'
            reject(Reject(number, "missing_image_size", detail, source_ref=ref))
            continue
        annotations = label.get("annotations", [])
        if not isinstance(annotations, list):
            detail = f"expected '{attr}.annotations' to be a list, got {type(annotations).__name__}"
            reject(Reject(number, "bad_annotations", detail, source_ref=ref))
            continue
        suffix = os.path.splitext(ref)[1].lower()
        if suffix not in IMAGE_SUFFIXES:
            detail = f"image type '{suffix or '(none)'}' not supported; expected one of {', '.join(IMAGE_SUFFIXES)}"
            reject(Reject(number, "unsupported_image_type", detail, source_ref=ref))
            continue
        first = seen_refs.get(ref)
        if first is not None:
            detail = f"'{ref}' already labelled on line {first}; expected each image once"
            reject(Reject(number, "duplicate_source_ref", detail, source_ref=ref))
            continue
        meta = record.get(meta_key)
        class_map = meta.get("class-map") if isinstance(meta, dict) else None
        if class_map is not None and class_map != last_map:
            problem = _merge_class_map(col, class_map, number)
            if problem:
                reject(Reject(number, "bad_class_map", problem, source_ref=ref))
                continue
            last_map = class_map
        seen_refs[ref] = number
        image = len(col.img_line)
        col.img_line.append(number)
        col.img_ref.append(ref)
        col.img_w.append(int(size["width"]))
        col.img_h.append(int(size["height"]))
        for k, ann in enumerate(annotations):
            try:
                values = (ann["class_id"], ann["left"], ann["top"], ann["width"], ann["height"])
            except (KeyError, TypeError):
                values = (None, None, None, None, None)  # reported as a bad box below, with its index
            box_img_append(image)
            box_ann_append(k)
            c_app(values[0])
            l_app(values[1])
            t_app(values[2])
            w_app(values[3])
            h_app(values[4])

    classes = _class_entries(col.class_map)
    images = pd.DataFrame(
        {
            "line": np.asarray(col.img_line, dtype=np.int64),
            "source_ref": pd.Series(col.img_ref, dtype=object),
            "width": np.asarray(col.img_w, dtype=np.int64),
            "height": np.asarray(col.img_h, dtype=np.int64),
        }
    )
    boxes, box_rejects, bad_images, clipped = _check_boxes(col, images, classes)
    rejects = col.rejects + box_rejects
    if bad_images.size:
        keep = np.ones(len(images), dtype=bool)
        keep[bad_images] = False
        new_index = np.cumsum(keep) - 1
        images = images[keep].reset_index(drop=True)
        boxes = boxes[keep[boxes["image"].to_numpy()]].copy()
        boxes["image"] = new_index[boxes["image"].to_numpy()]
        boxes = boxes.reset_index(drop=True)
    rejects = _attach_raw_records(path, rejects)
    return ParsedManifest(
        label_attribute=attr,
        images=images,
        boxes=boxes,
        classes=classes,
        rejects=sorted(rejects, key=lambda r: (r.line, r.scope)),
        clipped_lines=clipped,
        records=records,
    )


def _merge_class_map(col: _Collector, class_map: object, number: int) -> str | None:
    if not isinstance(class_map, dict):
        return f"expected 'class-map' to be an object of id -> name, got {type(class_map).__name__}"
    for key, name in class_map.items():
        if not (isinstance(key, str) and key.strip().lstrip("-").isdigit()):
            return f"class-map key {key!r} is not an integer id"
        if not isinstance(name, str) or not name:
            return f"class-map id {key} has name {name!r}; expected a non-empty string"
        key = str(int(key))
        known = col.class_map.get(key)
        if known is None:
            col.class_map[key] = name
            col.class_map_line[key] = number
        elif known != name:
            return (
                f"class-map id {key} is '{name}' here but '{known}' on line {col.class_map_line[key]}; "
                "expected one name per id"
            )
    return None


def _class_entries(class_map: dict[str, str]) -> list[ClassEntry]:
    """Contiguous YOLO ids in ascending order of the original Ground Truth ids (stable across runs)."""
    ordered = sorted(class_map.items(), key=lambda kv: int(kv[0]))
    return [ClassEntry(id=i, name=name, source_id=sid) for i, (sid, name) in enumerate(ordered)]


def _as_float(values: list[object]) -> np.ndarray:
    """Numbers -> float64; anything else (None, text, lists) -> NaN, so it is reported, never raised."""
    try:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            return arr
    except (TypeError, ValueError):
        pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
    return out


def _check_boxes(
    col: _Collector, images: pd.DataFrame, classes: list[ClassEntry]
) -> tuple[pd.DataFrame, list[Reject], np.ndarray, list[int]]:
    """Vectorised box checks: bad fields / unknown class reject the image; empty boxes are dropped."""
    img = np.asarray(col.box_img, dtype=np.int64)
    ann = np.asarray(col.box_ann, dtype=np.int64)
    cls_raw, left, top, width, height = (_as_float(c) for c in col.box_cols)
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
        lambda i: f"annotation {ann[i]}: expected numeric {', '.join(_BOX_FIELDS)} with an integer class_id",
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
            f"annotation {ann[i]}: class_id {cls_int[i]} is not in the class-map; expected one of {known_ids}"
        ),
    )
    bad_images = np.unique(img[bad_fields | unknown])

    ok = ~(bad_fields | unknown)
    zero = ok & ((width <= 0) | (height <= 0))
    report(
        zero,
        "zero_area",
        "box",
        lambda i: f"annotation {ann[i]}: width={width[i]:g}, height={height[i]:g}; expected both > 0",
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
            f"annotation {ann[i]}: box left={left[i]:g} top={top[i]:g} width={width[i]:g} height={height[i]:g} "
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


def _attach_raw_records(path: Path, rejects: list[Reject]) -> list[Reject]:
    """Fill ``record`` with the raw manifest text for record-level rejects (a second streaming pass)."""
    wanted = {r.line for r in rejects if r.scope == "record" and r.record is None}
    if not wanted:
        return rejects
    raw: dict[int, str] = {}
    for number, line in iter_lines(path):
        if number in wanted:
            raw[number] = line.decode("utf-8", errors="replace").rstrip("\r\n")
            if len(raw) == len(wanted):
                break
    return [
        Reject(r.line, r.reason, r.detail, r.scope, r.source_ref, raw.get(r.line)) if r.line in wanted else r
        for r in rejects
    ]
