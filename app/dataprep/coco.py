"""Read a COCO detection JSON (an instances file, as CVAT, Label Studio, Roboflow and COCO itself export it) into
the records the Ground Truth manifest path yields, so both share every later step (app.dataprep.plan).

Conventions follow ultralytics' own converter (ultralytics/data/converter.py ``convert_coco``), with the
differences said where they are:
- ``bbox`` is ``[x, y, width, height]`` in pixels, x/y the top-left corner.
- ``iscrowd`` annotations are left out (ultralytics skips them silently; here each is listed in the rejects file
  with scope "skip", not counted as a data problem).
- A box with width or height <= 0 is dropped (ultralytics: silently; here: a "zero_area" reject naming the
  annotation id, the same check as for manifests).
- Classes: category ids to contiguous 0..n-1 in ascending category-id order. ultralytics uses ``category_id - 1``
  (or the COCO-91 -> 80 table), which equals this when the ids are 1..n and would leave gaps or negative ids when
  they are not (CVAT and Label Studio start at 0 or leave holes); the original id is kept as ``source_id``.
- An image with no annotation is kept as a negative (ultralytics writes no label file for it, which its loader
  also treats as a background image when the image is listed).
- Identical duplicate boxes are kept (ultralytics drops them); the manifest path keeps them too.
Unlike the converter, bad records are never skipped silently: a dangling ``image_id``, an unknown
``category_id`` or a malformed annotation rejects the image with the annotation id and image id named.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from app.contracts.dataset import IMAGE_SUFFIXES
from app.dataprep.coco_stream import WHOLE, iter_coco
from app.dataprep.errors import DataprepError
from app.dataprep.manifest import ParsedManifest, Reject, Vocabulary, parsed_from_columns
from app.dataprep.manifest_scan import Columns
from app.dataprep.plan import SKIP

COCO = Vocabulary(box="annotation id", class_field="category_id", class_list="'categories'", record="image")
LABEL_ATTRIBUTE = "coco"  # dataset.json's label_attribute for COCO labels (it names the Ground Truth key)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def image_uri(base: str, file_name: str) -> str:
    """Where a COCO ``file_name`` is: an s3:// or absolute path as given, else relative to ``base``."""
    if file_name.startswith("s3://") or file_name.startswith("/"):
        return file_name
    return f"{base.rstrip('/')}/{file_name.lstrip('./') if file_name.startswith('./') else file_name}"


@dataclass
class _Annotations:
    """Annotation columns in compact arrays (8 bytes per value), whatever order the file gives them in."""

    ids: array[int] = field(default_factory=lambda: array("q"))
    image_ids: array[int] = field(default_factory=lambda: array("q"))
    values: list[array[float]] = field(default_factory=lambda: [array("d") for _ in range(5)])
    bad: list[tuple[int, str]] = field(default_factory=list)  # (position, why) of malformed annotations
    crowd: list[int] = field(default_factory=list)  # positions of iscrowd annotations

    def add(self, index: int, element: object) -> list[Reject]:
        # The hot loop of a 1M-box file: exact type checks (bool is not int here), finiteness checked later in
        # numpy (Python's json accepts NaN and Infinity).
        if type(element) is not dict:
            return [
                Reject(
                    0,
                    "bad_annotation",
                    f"expected an object, got {type(element).__name__}",
                    place=f"annotations[{index}]",
                )
            ]
        ann_id = element.get("id")
        image_id = element.get("image_id")
        if type(ann_id) is not int or type(image_id) is not int:
            where = f"annotations[{index}]" + (f" (id {element.get('id')!r})" if "id" in element else "")
            return [Reject(0, "bad_annotation", "expected integer 'id' and 'image_id'", place=where)]
        category = element.get("category_id")
        bbox = element.get("bbox")
        position = len(self.ids)
        self.ids.append(ann_id)
        self.image_ids.append(image_id)
        row: tuple[float, ...]
        if (
            type(category) is int
            and type(bbox) is list
            and len(bbox) == 4
            and all(type(v) in _NUMBER for v in bbox)
        ):
            row = (category, *bbox)
            if element.get("iscrowd"):
                self.crowd.append(position)
        else:
            self.bad.append((position, bad_box_detail(element)))
            row = (0, math.nan, math.nan, math.nan, math.nan)
        for column, value in zip(self.values, row, strict=True):
            column.append(value)
        return []


_NUMBER = frozenset({int, float})


def bad_box_detail(element: dict[str, object]) -> str:
    return (
        f"category_id {element.get('category_id')!r}, bbox {element.get('bbox')!r}; expected an integer "
        "category_id and bbox [x, y, width, height] of 4 finite numbers (pixels, top-left x/y)"
    )


def read_coco(path: Path, *, image_base: str, source: str | None = None) -> ParsedManifest:
    """Parse the COCO file at ``path`` (local); ``image_base`` is the folder or s3:// prefix its ``file_name``s
    are relative to; ``source`` names the file in messages (e.g. its s3:// URI)."""
    name = source or str(path)
    if not path.is_file():
        raise DataprepError(f"{name}: not found; expected a COCO detection JSON")
    image_ids = array("q")
    ordinals = array("q")  # 1-based position in 'images': the record's "line"
    refs: list[str] = []
    widths = array("q")
    heights = array("q")
    categories: dict[int, str] = {}
    anns = _Annotations()
    rejects: list[Reject] = []
    seen_keys: set[str] = set()
    image_records = 0
    for key, index, element in iter_coco(path):
        seen_keys.add(key)
        if index == WHOLE:
            if key in ("images", "annotations", "categories") and element != []:
                raise DataprepError(f"{name}: '{key}' is {type(element).__name__}; expected a list")
            continue
        if key == "annotations":
            rejects += anns.add(index, element)
        elif key == "images":
            image_records += 1
            problem = _image_problem(element)
            if problem:
                image = element.get("id") if isinstance(element, dict) else None
                where = f"image id {image}" if _int(image) is not None else f"images[{index}]"
                rejects.append(Reject(index + 1, "bad_image", problem, place=where))
                continue
            assert isinstance(element, dict)
            image_ids.append(element["id"])
            ordinals.append(index + 1)
            refs.append(image_uri(image_base, element["file_name"]))
            widths.append(element["width"])
            heights.append(element["height"])
        elif key == "categories":
            categories.update(_category(name, index, element, categories))
    for key in ("images", "annotations", "categories"):
        if key not in seen_keys:
            raise DataprepError(f"{name}: no '{key}' list; expected a COCO detection JSON (instances file)")
    return _assemble(image_ids, ordinals, refs, widths, heights, categories, anns, rejects, image_records)


def _image_problem(element: object) -> str | None:
    if not isinstance(element, dict):
        return f"expected an object, got {type(element).__name__}"
    if _int(element.get("id")) is None:
        return f"id {element.get('id')!r}; expected an integer"
    file_name = element.get("file_name")
    width, height = _int(element.get("width")), _int(element.get("height"))
    if not isinstance(file_name, str) or not file_name:
        return "expected 'file_name' with the image's path"
    if not (width and height and width > 0 and height > 0):
        return f"width {element.get('width')!r}, height {element.get('height')!r}; expected positive integers"
    dot = file_name.rfind(".")
    suffix = file_name[dot:].lower() if dot > file_name.rfind("/") + 1 else ""
    if suffix not in IMAGE_SUFFIXES:
        return f"image type '{suffix or '(none)'}' of '{file_name}' not supported; expected one of {', '.join(IMAGE_SUFFIXES)}"
    return None


def _category(name: str, index: int, element: object, known: dict[int, str]) -> dict[int, str]:
    """One category; a broken or contradicting category is a file-level error (every class would be wrong)."""
    cat_id = _int(element.get("id")) if isinstance(element, dict) else None
    label = element.get("name") if isinstance(element, dict) else None
    if cat_id is None or not isinstance(label, str) or not label:
        raise DataprepError(
            f"{name}: categories[{index}]: {element!r}; expected {{'id': <integer>, 'name': <non-empty string>}}"
        )
    if known.get(cat_id, label) != label:
        raise DataprepError(
            f"{name}: categories[{index}]: id {cat_id} is '{label}' here but '{known[cat_id]}' earlier; "
            "expected one name per category id"
        )
    return {cat_id: label}


def _ints(values: array[int]) -> np.ndarray:
    return np.frombuffer(values, dtype=np.int64) if values else np.zeros(0, np.int64)


def _assemble(
    image_ids: array[int],
    ordinals: array[int],
    refs: list[str],
    widths: array[int],
    heights: array[int],
    categories: dict[int, str],
    anns: _Annotations,
    rejects: list[Reject],
    image_records: int,
) -> ParsedManifest:
    ids = _ints(image_ids)
    n = len(ids)
    # A record's "line" is its ordinal: image records 1..N by position in 'images', then each annotation that
    # belongs to no image (it counts as a record of its own, so it weighs in the reject fraction).
    lines = _ints(ordinals)
    orphan_line = iter(range(image_records + 1, 1 << 62))
    rejects = [replace(r, line=next(orphan_line)) if r.line == 0 else r for r in rejects]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    bad_image = np.zeros(n, dtype=bool)
    for j in np.flatnonzero(~first):  # a repeated image id: the first record keeps it
        row = int(order[j])
        bad_image[row] = True
        rejects.append(
            Reject(
                int(lines[row]),
                "duplicate_image_id",
                f"image id {ids[row]} is also images[{int(order[j - 1])}]; expected unique image ids",
                place=f"image id {ids[row]}",
                source_ref=refs[row],
            )
        )
    ann_ids = np.frombuffer(anns.ids, dtype=np.int64) if anns.ids else np.zeros(0, np.int64)
    ann_image = np.frombuffer(anns.image_ids, dtype=np.int64) if anns.image_ids else np.zeros(0, np.int64)
    unique_sorted = sorted_ids[first]
    unique_rows = order[first]
    if n:
        pos = np.minimum(np.searchsorted(unique_sorted, ann_image), len(unique_sorted) - 1)
        found = unique_sorted[pos] == ann_image
        row_of = np.where(found, unique_rows[pos], -1)
    else:
        found = np.zeros(len(ann_image), dtype=bool)
        row_of = np.full(len(ann_image), -1, dtype=np.int64)
    dangling = np.flatnonzero(~found)
    for a in dangling:
        rejects.append(
            Reject(
                next(orphan_line),
                "dangling_image_id",
                f"image_id {ann_image[a]} is not in 'images'; expected the id of an image record",
                place=f"annotation id {ann_ids[a]}",
            )
        )
    vals = np.stack([np.frombuffer(c, dtype=np.float64) if c else np.zeros(0) for c in anns.values])
    already_bad = {p for p, _ in anns.bad}
    for column in np.flatnonzero(
        ~np.isfinite(vals).all(axis=0)
    ).tolist():  # NaN / Infinity: json accepts them
        if column not in already_bad:
            detail = f"bbox {vals[1:, column].tolist()}; expected 4 finite numbers (pixels, top-left x/y)"
            anns.bad.append((column, detail))
            already_bad.add(column)
    anns.crowd = [c for c in anns.crowd if c not in already_bad]
    for position, why in anns.bad:
        if not found[position]:
            continue  # already reported as dangling
        row = int(row_of[position])
        bad_image[row] = True
        rejects.append(
            Reject(
                int(lines[row]),
                "bad_box",
                why,
                place=f"annotation id {ann_ids[position]} (image id {ids[row]})",
                source_ref=refs[row],
            )
        )
    crowd = np.zeros(len(ann_ids), dtype=bool)
    crowd[anns.crowd] = True
    for k in anns.crowd:
        if found[k]:
            rejects.append(
                Reject(
                    int(lines[row_of[k]]),
                    "crowd_region",
                    "iscrowd annotation left out (ultralytics' COCO converter skips them too)",
                    scope=SKIP,
                    place=f"annotation id {ann_ids[k]} (image id {ids[row_of[k]]})",
                    source_ref=refs[int(row_of[k])],
                )
            )
    # Rows of kept images, and the annotations that belong to them (dangling/crowd ones are out).
    keep_rows = np.flatnonzero(~bad_image)
    new_row = np.full(n, -1, dtype=np.int64)
    new_row[keep_rows] = np.arange(len(keep_rows))
    keep_ann = found & ~crowd
    keep_ann[keep_ann] = ~bad_image[row_of[keep_ann]]
    box_img_old = row_of[keep_ann]
    order_boxes = np.argsort(box_img_old, kind="stable")  # grouped by image, file order within an image
    del anns
    col = Columns(
        records=next(orphan_line) - 1,
        img_line=lines[keep_rows],
        img_offset=np.zeros(len(keep_rows), dtype=np.int64),
        img_ref=[refs[int(r)] for r in keep_rows],
        img_w=np.frombuffer(widths, dtype=np.int64)[keep_rows] if n else np.zeros(0, np.int64),
        img_h=np.frombuffer(heights, dtype=np.int64)[keep_rows] if n else np.zeros(0, np.int64),
        box_img=new_row[box_img_old[order_boxes]],
        box_ann=ann_ids[keep_ann][order_boxes],
        box_vals=vals[:, keep_ann][:, order_boxes],
        rejects=rejects,
        class_map={str(k): v for k, v in categories.items()},
    )
    id_of_line = dict(zip(lines.tolist(), ids.tolist(), strict=True))
    return parsed_from_columns(
        col,
        LABEL_ATTRIBUTE,
        vocabulary=COCO,
        place_of=lambda line: f"image id {id_of_line.get(line, '?')}",
        label_format="coco",
    )
