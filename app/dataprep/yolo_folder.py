"""Read a YOLO detection dataset (its ``data.yaml``, local or on S3) into the records the Ground Truth manifest path
yields, so it goes through the same class map, split, balancing and reports (app.dataprep.plan).

Layout as ultralytics reads it (ultralytics/data/utils.py ``check_det_dataset``, ``img2label_paths``):
``train``/``val``/``test`` name image folders (searched recursively) or ``.txt`` lists of images, relative to
``path`` (itself relative to the data.yaml's folder; ultralytics would also try its own datasets folder, which a
job on another machine does not have); each image's label file is the image path with the last ``/images/``
replaced by ``/labels/`` and the suffix by ``.txt``; a missing label file is a negative image. Every image listed
goes into one pool and is split again here (same seed, same split as any other format); an image listed twice
is reported. Label lines are ``cls cx cy w h`` normalised to [0, 1]; a polygon line (``cls x1 y1 x2 y2 ...``) is
turned into its bounding box as ultralytics does for detection. Coordinates outside [0, 1] reject the image, as
ultralytics' label check does. The pixel size of each image is read from its header (EXIF orientation applied).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import UnidentifiedImageError

from app.contracts.dataset import IMAGE_SUFFIXES
from app.contracts.storage import S3Uri
from app.dataprep.errors import DataprepError
from app.dataprep.manifest import ParsedManifest, Reject, Vocabulary, parsed_from_columns
from app.dataprep.manifest_scan import Columns
from app.dataprep.storage import is_s3, s3_client
from app.dataprep.verify import oriented_size

YOLO = Vocabulary(box="label line", class_field="class", class_list="data.yaml 'names'", record="image")
LABEL_ATTRIBUTE = "yolo"
SPLIT_KEYS = ("train", "val", "test")
HEADER_BYTES = 256 * 1024  # enough for the image header (and EXIF) of common JPEG/PNG files


class Folder:
    """A local folder or an s3:// prefix: list files, read them (one S3 client, made on first use)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def read(self, uri: str, limit: int | None = None) -> bytes | None:
        """The bytes (the first ``limit`` when given), None when there is no such file."""
        if not is_s3(uri):
            path = Path(uri)
            if not path.is_file():
                return None
            with open(path, "rb") as handle:
                return handle.read(limit) if limit else handle.read()
        loc = S3Uri.parse(uri)
        extra = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
        try:
            return bytes(self.client.get_object(Bucket=loc.bucket, Key=loc.key, **extra)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def files(self, folder: str) -> list[str]:
        """Every file under ``folder`` (recursively), sorted."""
        if not is_s3(folder):
            root = Path(folder)
            return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        loc = S3Uri.parse(folder.rstrip("/") + "/")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=loc.key)
        return sorted(f"s3://{loc.bucket}/{o['Key']}" for page in pages for o in page.get("Contents", []))

    def is_folder(self, uri: str) -> bool:
        if not is_s3(uri):
            return Path(uri).is_dir()
        return bool(self.files(uri)[:1])


def join(base: str, rel: str) -> str:
    if is_s3(rel) or rel.startswith("/"):
        return rel
    if is_s3(base):
        loc = S3Uri.parse(base.rstrip("/") + "/")
        return f"s3://{loc.bucket}/{posixpath.normpath(posixpath.join(loc.key, rel))}"
    return str((Path(base) / rel).resolve())


def parent(uri: str) -> str:
    return uri.rsplit("/", 1)[0] if is_s3(uri) else str(Path(uri).resolve().parent)


def label_uri(image: str) -> str:
    """ultralytics ``img2label_paths``: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``."""
    head, sep, tail = image.rpartition("/images/")
    path = f"{head}/labels/{tail}" if sep else image
    return path.rsplit(".", 1)[0] + ".txt"


@dataclass(frozen=True)
class DataYaml:
    source: str
    names: dict[int, str]
    image_lists: tuple[str, ...]  # folders or .txt lists, resolved


def read_data_yaml(uri: str, folder: Folder) -> DataYaml:
    raw = folder.read(uri)
    if raw is None:
        raise DataprepError(f"{uri}: not found; expected a YOLO data.yaml")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise DataprepError(f"{uri}: not valid YAML ({exc}); expected a YOLO data.yaml") from None
    if not isinstance(doc, dict):
        raise DataprepError(f"{uri}: expected a YAML mapping with 'train' and 'names'")
    names = doc.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    if (
        not isinstance(names, dict)
        or not names
        or not all(isinstance(k, int) and isinstance(v, str | int) and str(v) for k, v in names.items())
    ):
        raise DataprepError(
            f"{uri}: field 'names': {names!r}; expected a list of class names or a mapping index -> name"
        )
    if sorted(names) != list(range(len(names))):
        raise DataprepError(f"{uri}: field 'names': indices {sorted(names)}; expected 0..{len(names) - 1}")
    nc = doc.get("nc")
    if nc is not None and nc != len(names):
        raise DataprepError(f"{uri}: field 'nc' is {nc} but 'names' has {len(names)}; expected them to agree")
    root = parent(uri)
    if isinstance(doc.get("path"), str) and doc["path"]:
        root = join(root, doc["path"])
    lists: list[str] = []
    for key in SPLIT_KEYS:
        value = doc.get(key)
        entries = value if isinstance(value, list) else [value] if value else []
        if not all(isinstance(e, str) and e for e in entries):
            raise DataprepError(
                f"{uri}: field '{key}': {value!r}; expected a folder, a .txt list or a list of them"
            )
        lists += [join(root, e) for e in entries]
    if not lists:
        raise DataprepError(
            f"{uri}: no 'train' (nor 'val'/'test'); expected at least one image folder or list"
        )
    return DataYaml(uri, {int(k): str(v) for k, v in names.items()}, tuple(lists))


def listed_images(data: DataYaml, entry: str, folder: Folder) -> list[str]:
    """The images an image-list file (``.txt``, one path per line, relative to the list) names."""
    text = folder.read(entry)
    if text is None:
        raise DataprepError(f"{data.source}: image list {entry} not found")
    base = parent(entry)
    return [join(base, line.strip()) for line in text.decode().splitlines() if line.strip()]


def image_locations(data: DataYaml, folder: Folder) -> list[str]:
    """Where the images are, without listing folders: each split folder, and each image a .txt list names (what a
    launcher checks against the locations a job may read)."""
    out: list[str] = []
    for entry in data.image_lists:
        out += listed_images(data, entry, folder) if entry.endswith(".txt") else [entry.rstrip("/") + "/"]
    return out


def list_images(data: DataYaml, folder: Folder) -> list[str]:
    """Every image the splits name, in data.yaml order (repeats kept: the shared checks report them)."""
    images: list[str] = []
    for entry in data.image_lists:
        if entry.endswith(".txt"):
            images += listed_images(data, entry, folder)
        elif folder.is_folder(entry):
            images += [f for f in folder.files(entry) if posixpath.splitext(f)[1].lower() in IMAGE_SUFFIXES]
        else:
            raise DataprepError(f"{data.source}: {entry}: no such folder; expected the images of a split")
    return images


@dataclass
class _Image:
    """One image's size and label rows (or the reason it cannot be used)."""

    width: int = 0
    height: int = 0
    rows: list[tuple[int, list[float]]] | None = None  # (label-file line, numbers)
    problem: tuple[str, str, str] | None = None  # (reason, place, detail)


def _read_image(uri: str, folder: Folder) -> _Image:
    label = label_uri(uri)
    try:
        head = folder.read(uri, HEADER_BYTES)
        if head is None:
            return _Image(problem=("missing_image", uri, "listed in data.yaml but not found"))
        try:
            width, height = oriented_size(head)
        except (OSError, UnidentifiedImageError, SyntaxError):
            data = folder.read(uri)  # a header beyond the first bytes (large EXIF/ICC): read it all
            width, height = oriented_size(data or b"")
        text = folder.read(label)
    except (OSError, UnidentifiedImageError) as exc:
        return _Image(problem=("unreadable_image", uri, f"cannot read the image: {exc}"))
    rows: list[tuple[int, list[float]]] = []
    for number, line in enumerate((text or b"").decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        polygon = len(values) > 5 and len(values) % 2 == 1
        if not (len(values) == 5 or polygon) or values[0] != int(values[0]) or values[0] < 0:
            detail = (
                f"{line.strip()!r}; expected 'class cx cy w h' (or 'class x1 y1 x2 y2 ...'), class an integer"
            )
            return _Image(problem=("bad_label_line", f"{label}:{number}", detail))
        coords = values[1:]
        if min(coords) < 0 or max(coords) > 1:
            detail = f"{line.strip()!r}: coordinates outside [0, 1]; expected normalised values"
            return _Image(problem=("bad_box", f"{label}:{number}", detail))
        if polygon:  # ultralytics segments2boxes: a polygon's bounding box
            xs, ys = coords[0::2], coords[1::2]
            coords = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)]
        rows.append((number, [values[0], *coords]))
    return _Image(width, height, rows)


def read_yolo(data_yaml: str, *, workers: int = 16, client: Any = None) -> ParsedManifest:
    """Parse the YOLO dataset of ``data_yaml`` (a local path or s3:// URI)."""
    folder = Folder(client)
    data = read_data_yaml(data_yaml, folder)
    images = list_images(data, folder)
    if not images:
        raise DataprepError(f"{data_yaml}: the splits {list(data.image_lists)} hold no images")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        read: list[_Image] = list(pool.map(lambda uri: _read_image(uri, folder), images))
    return _assemble(data, images, read)


def _assemble(data: DataYaml, uris: list[str], read: list[_Image]) -> ParsedManifest:
    rejects: list[Reject] = []
    kept: list[int] = []
    for i, (uri, image) in enumerate(zip(uris, read, strict=True)):
        if image.problem:
            reason, place, detail = image.problem
            rejects.append(Reject(i + 1, reason, detail, place=place, source_ref=uri))
        else:
            kept.append(i)
    box_img: list[int] = []
    box_line: list[int] = []
    vals: list[list[float]] = []
    for row, i in enumerate(kept):
        for number, (cls, cx, cy, w, h) in read[i].rows or []:
            width, height = read[i].width, read[i].height
            box_img.append(row)
            box_line.append(number)
            vals.append([cls, (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height])
    col = Columns(
        records=len(uris),
        img_line=np.asarray([i + 1 for i in kept], dtype=np.int64),
        img_offset=np.zeros(len(kept), dtype=np.int64),
        img_ref=[uris[i] for i in kept],
        img_w=np.asarray([read[i].width for i in kept], dtype=np.int64),
        img_h=np.asarray([read[i].height for i in kept], dtype=np.int64),
        box_img=np.asarray(box_img, dtype=np.int64),
        box_ann=np.asarray(box_line, dtype=np.int64),
        box_vals=np.asarray(vals, dtype=np.float64).T.reshape(5, len(vals)),
        rejects=rejects,
        class_map={str(k): v for k, v in data.names.items()},
    )
    label_of: Callable[[int], str] = lambda line: label_uri(uris[line - 1])  # noqa: E731
    return parsed_from_columns(col, LABEL_ATTRIBUTE, vocabulary=YOLO, place_of=label_of, label_format="yolo")
