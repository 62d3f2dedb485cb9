"""Chunked, parallel scan of a manifest into plain columns, with the per-record checks that need the JSON.

The file is cut into byte ranges at line boundaries; each range is scanned (in worker processes when there are
several) into numpy columns, so memory is bounded by the chunk size and the columns, never by Python objects per
box. Results are merged in file order, so the outcome is identical whatever the number of workers.
Cross-record checks (duplicate ``source-ref``s, box geometry, class ids) happen after the merge, vectorised.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from app.contracts.dataset import IMAGE_SUFFIXES

try:  # orjson decodes about twice as fast; the standard library is the fallback
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is pinned in pyproject
    from json import loads  # type: ignore[assignment]

CHUNK_BYTES = 8 * 1024 * 1024
MAX_WORKERS = 8
BOX_FIELDS = ("class_id", "left", "top", "width", "height")


@dataclass(frozen=True)
class Reject:
    """One problem found in the manifest: where, what kind, what was expected; ``scope`` is record or box."""

    line: int
    reason: str
    detail: str
    scope: str = "record"
    source_ref: str | None = None
    record: str | None = None  # the raw manifest line (filled in for record-level rejects)
    # Where the problem is when the label file has no meaningful line (COCO: "annotation id 7", YOLO: the label
    # file and its line); ``line`` is then the record's ordinal, still unique per record.
    place: str | None = None

    def message(self, manifest: str) -> str:
        where = f"{manifest}: {self.place}" if self.place else f"{manifest}:{self.line}"
        return f"{where}: {self.reason}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Columns:
    """What a scan found: kept images, their boxes as raw numbers (NaN where not a number), rejects, class map."""

    lines: int = 0  # physical lines covered
    records: int = 0  # non-blank lines
    img_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    img_offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # byte offset of the line
    img_ref: list[str] = field(default_factory=list)
    img_w: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    img_h: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    box_img: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    box_ann: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    box_vals: np.ndarray = field(default_factory=lambda: np.zeros((5, 0)))
    rejects: list[Reject] = field(default_factory=list)
    class_map: dict[str, str] = field(default_factory=dict)
    class_map_line: dict[str, int] = field(default_factory=dict)


def chunk_ranges(path: Path, chunk_bytes: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """Byte ranges of about ``chunk_bytes`` that start and end at line boundaries."""
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as handle:
        while bounds[-1] + chunk_bytes < size:
            handle.seek(bounds[-1] + chunk_bytes)
            handle.readline()  # finish the line we landed in
            position = handle.tell()
            if position >= size:
                break
            bounds.append(position)
    bounds.append(size)
    return list(itertools.pairwise(bounds))


def _positive_int(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and value == int(value)
    )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def _map_key(class_map: object) -> tuple[object, ...] | None:
    """A hashable identity for a class map already accepted (None: not hashable, always check it)."""
    if not isinstance(class_map, dict):
        return None
    key = tuple(class_map.items())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def merge_class_map(
    known: dict[str, str], known_line: dict[str, int], class_map: object, number: int
) -> str | None:
    """Add ``class_map`` (from line ``number``) to ``known``; the reason it cannot be added, if any."""
    if not isinstance(class_map, dict):
        return f"expected 'class-map' to be an object of id -> name, got {type(class_map).__name__}"
    for key, name in class_map.items():
        if not (isinstance(key, str) and key.strip().lstrip("-").isdigit()):
            return f"class-map key {key!r} is not an integer id"
        if not isinstance(name, str) or not name:
            return f"class-map id {key} has name {name!r}; expected a non-empty string"
    for key, name in class_map.items():
        sid = str(int(key))
        seen = known.get(sid)
        if seen is not None and seen != name:
            # the first line naming this id is filled in file-wide by _merge (a range only knows its own part)
            return f"class-map id {sid} is '{name}' here but '{seen}' on line <first:{sid}>; expected one name per id"
    for key, name in class_map.items():
        sid = str(int(key))
        if sid not in known:
            known[sid] = name
            known_line[sid] = number
    return None


def _numbers(flat: list[object]) -> np.ndarray:
    """(5, n) float64 of the box fields; NaN for a missing or non-numeric value (reported later, never raised)."""
    try:
        cols = [[a[k] for a in flat] for k in BOX_FIELDS]  # type: ignore[index]
        out = np.array(cols, dtype=np.float64)
        if out.shape == (len(BOX_FIELDS), len(flat)):
            return out
    except (KeyError, TypeError, ValueError, IndexError):
        pass
    out = np.full((len(BOX_FIELDS), len(flat)), np.nan)
    for j, a in enumerate(flat):
        if not isinstance(a, dict):
            continue
        for i, k in enumerate(BOX_FIELDS):
            v = a.get(k)
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[i, j] = float(v)
    return out


def scan_range(
    path: Path,
    start: int,
    end: int,
    attr: str,
    known_map: dict[str, str] | None = None,
) -> Columns:
    """Scan bytes ``[start, end)`` of ``path``; line numbers are 1-based within the range.

    ``known_map`` seeds the class map with the names earlier ranges gave.
    """
    # Decoded JSON holds no reference cycles, but the cyclic GC would keep re-walking the annotation lists
    # kept until the range is done (about a fifth of the scan time): pause it for the range.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan_range(path, start, end, attr, known_map)
    finally:
        if enabled:
            gc.enable()


def _scan_range(path: Path, start: int, end: int, attr: str, known_map: dict[str, str] | None) -> Columns:
    with open(path, "rb") as handle:
        handle.seek(start)
        raw_lines = handle.read(end - start).split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the file's final newline
    meta_key = f"{attr}-metadata"
    rejects: list[Reject] = []
    reject = rejects.append
    class_map = dict(known_map or {})
    class_map_line = dict.fromkeys(class_map, 0)
    accepted_maps: set[tuple[object, ...]] = set()
    img_line: list[int] = []
    img_offset: list[int] = []
    img_ref: list[str] = []
    img_w: list[int] = []
    img_h: list[int] = []
    ann_lists: list[list[object]] = []
    records = 0
    line_starts = list(itertools.accumulate((len(raw) + 1 for raw in raw_lines), initial=start))
    for number, raw in enumerate(raw_lines, 1):
        try:
            record = loads(raw)
        except (ValueError, RecursionError) as exc:
            if not raw.strip():
                continue  # a blank line is not a record
            records += 1
            detail = f"not valid JSON ({exc}); expected one JSON object per line"
            reject(Reject(number, "malformed_json", detail, record=_text(raw)))
            continue
        records += 1
        if not isinstance(record, dict):
            detail = f"expected a JSON object per line, got {type(record).__name__}"
            reject(Reject(number, "malformed_json", detail, record=_text(raw)))
            continue
        ref = record.get("source-ref")
        if not isinstance(ref, str) or not ref:
            reject(
                Reject(
                    number, "missing_source_ref", "expected 'source-ref' with an image URI", record=_text(raw)
                )
            )
            continue
        label = record.get(attr)
        if not isinstance(label, dict):
            meta = record.get(meta_key)
            why = meta.get("failure-reason") if isinstance(meta, dict) else None
            detail = f"no '{attr}' label object; expected a worker answer (failed worker?)"
            reject(
                Reject(
                    number,
                    "failed_worker",
                    detail + (f": {why}" if why else ""),
                    source_ref=ref,
                    record=_text(raw),
                )
            )
            continue
        sizes = label.get("image_size")
        size = sizes[0] if isinstance(sizes, list) and sizes and isinstance(sizes[0], dict) else None
        width = size.get("width") if size else None
        height = size.get("height") if size else None
        if not (type(width) is int and type(height) is int and width > 0 and height > 0) and not (
            _positive_int(width) and _positive_int(height)
        ):
            detail = f'expected \'{attr}.image_size\' as [{{"width": >0, "height": >0}}], got {sizes!r}'
            reject(Reject(number, "missing_image_size", detail, source_ref=ref, record=_text(raw)))
            continue
        annotations = label.get("annotations", [])
        if not isinstance(annotations, list):
            detail = f"expected '{attr}.annotations' to be a list, got {type(annotations).__name__}"
            reject(Reject(number, "bad_annotations", detail, source_ref=ref, record=_text(raw)))
            continue
        dot = ref.rfind(".")
        suffix = ref[dot:].lower() if dot > ref.rfind("/") + 1 else ""
        if suffix not in IMAGE_SUFFIXES:
            detail = f"image type '{suffix or '(none)'}' not supported; expected one of {', '.join(IMAGE_SUFFIXES)}"
            reject(Reject(number, "unsupported_image_type", detail, source_ref=ref, record=_text(raw)))
            continue
        meta = record.get(meta_key)
        cmap = meta.get("class-map") if isinstance(meta, dict) else None
        if cmap is not None:
            key = _map_key(cmap)
            if key is None or key not in accepted_maps:  # most records repeat one of a few class maps
                problem = merge_class_map(class_map, class_map_line, cmap, number)
                if problem:
                    reject(Reject(number, "bad_class_map", problem, source_ref=ref, record=_text(raw)))
                    continue
                if key is not None:
                    accepted_maps.add(key)
        img_line.append(number)
        img_offset.append(line_starts[number - 1])
        img_ref.append(ref)
        img_w.append(int(width))  # type: ignore[arg-type]
        img_h.append(int(height))  # type: ignore[arg-type]
        ann_lists.append(annotations)

    counts = np.fromiter((len(a) for a in ann_lists), dtype=np.int64, count=len(ann_lists))
    flat = [a for anns in ann_lists for a in anns]
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    for sid in known_map or {}:
        class_map_line.pop(sid, None)
        class_map.pop(sid, None)
    return Columns(
        lines=len(raw_lines),
        records=records,
        img_line=np.asarray(img_line, dtype=np.int64),
        img_offset=np.asarray(img_offset, dtype=np.int64),
        img_ref=img_ref,
        img_w=np.asarray(img_w, dtype=np.int64),
        img_h=np.asarray(img_h, dtype=np.int64),
        box_img=np.repeat(np.arange(len(ann_lists), dtype=np.int64), counts),
        box_ann=np.arange(len(flat), dtype=np.int64) - offsets,
        box_vals=_numbers(flat),
        rejects=rejects,
        class_map=class_map,
        class_map_line=class_map_line,
    )


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def scan_manifest(
    path: Path, attr: str, *, workers: int | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Columns:
    """Scan the whole file (ranges in parallel when there are several) and merge in file order."""
    ranges = chunk_ranges(path, chunk_bytes)
    workers = min(workers or default_workers(), len(ranges))
    if workers > 1:
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(
                pool.map(scan_range, [path] * len(ranges), *zip(*ranges, strict=True), [attr] * len(ranges))
            )
    else:
        parts = [scan_range(path, s, e, attr) for s, e in ranges]
    return _merge(path, attr, ranges, parts)


def _merge(path: Path, attr: str, ranges: list[tuple[int, int]], parts: list[Columns]) -> Columns:
    known: dict[str, str] = {}
    known_line: dict[str, int] = {}
    line_offset = 0
    image_offset = 0
    out = Columns()
    pieces: dict[str, list[np.ndarray]] = {
        k: [] for k in ("img_line", "img_offset", "img_w", "img_h", "box_img", "box_ann")
    }
    vals: list[np.ndarray] = []
    for (start, end), part in zip(ranges, parts, strict=True):
        if any(known.get(sid, name) != name for sid, name in part.class_map.items()):
            # a class-map clash with an earlier chunk: rescan this chunk knowing the earlier names (rare)
            part = scan_range(path, start, end, attr, known_map=known)
        for sid, name in part.class_map.items():
            if sid not in known:
                known[sid] = name
                known_line[sid] = part.class_map_line[sid] + line_offset
        out.records += part.records
        out.rejects.extend(replace(r, line=r.line + line_offset, detail=r.detail) for r in part.rejects)
        pieces["img_line"].append(part.img_line + line_offset)
        pieces["img_offset"].append(part.img_offset)
        pieces["img_w"].append(part.img_w)
        pieces["img_h"].append(part.img_h)
        pieces["box_img"].append(part.box_img + image_offset)
        pieces["box_ann"].append(part.box_ann)
        vals.append(part.box_vals)
        out.img_ref.extend(part.img_ref)
        line_offset += part.lines
        image_offset += len(part.img_ref)
    for key, arrays in pieces.items():
        setattr(out, key, np.concatenate(arrays) if arrays else np.zeros(0, np.int64))
    out.box_vals = np.concatenate(vals, axis=1) if vals else np.zeros((5, 0))
    out.lines = line_offset
    out.rejects = [replace(r, detail=_first_lines(r.detail, known_line)) for r in out.rejects]
    out.class_map = known
    out.class_map_line = known_line
    return out


_FIRST = re.compile(r"<first:(-?\d+)>")


def _first_lines(detail: str, known_line: dict[str, int]) -> str:
    """Fill in the file line that first named a class id (see merge_class_map)."""
    return _FIRST.sub(lambda m: str(known_line.get(m.group(1), "?")), detail)
