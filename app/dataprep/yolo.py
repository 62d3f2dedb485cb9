"""YOLO label geometry and naming: pixel boxes <-> normalised ``cls cx cy w h`` (6 decimals), safe file names."""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pandas as pd

from app.contracts.dataset import LABEL_DECIMALS

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SAFE = re.compile(r"[A-Za-z0-9-][A-Za-z0-9_-]{0,58}[A-Za-z0-9-]")  # already clean: no substitution needed
NAME_STEM_MAX = 60


def to_yolo(
    x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, width: np.ndarray, height: np.ndarray
) -> np.ndarray:
    """Pixel corners -> ``(n, 4)`` normalised ``cx cy w h``, rounded to 6 decimals and kept inside [0, 1]."""
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    out = np.stack([(x1 + x2) / (2 * w), (y1 + y2) / (2 * h), (x2 - x1) / w, (y2 - y1) / h], axis=1)
    return np.clip(np.round(out, LABEL_DECIMALS), 0.0, 1.0)


def from_yolo(xywhn: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Normalised ``cx cy w h`` -> ``(n, 4)`` pixel corners ``x1 y1 x2 y2``."""
    cx, cy, w, h = (xywhn[:, i] for i in range(4))
    width = np.asarray(width, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)
    return np.stack(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], axis=1
    )


def format_label_lines(cls: np.ndarray, xywhn: np.ndarray) -> str:
    """The text of one label file: ``cls cx cy w h`` per line with 6 decimals (empty for a negative image)."""
    fmt = f"%d %.{LABEL_DECIMALS}f %.{LABEL_DECIMALS}f %.{LABEL_DECIMALS}f %.{LABEL_DECIMALS}f\n"
    return "".join(fmt % (c, *row) for c, row in zip(cls.tolist(), xywhn.tolist(), strict=True))


def output_name(source_ref: str, copy: int = 0) -> str:
    """A flat, collision-safe file name for an image: sanitised stem + hash of the full URI + lower-case suffix.

    ``a/x.jpg`` vs ``b/x.jpg`` (same basename), ``x.jpg`` vs ``x.png`` and dotted names (``a.b.jpg``) all get
    distinct names; dots are removed from the stem so the label file is simply ``<stem>.txt``. ``copy`` > 0 names
    an oversampled duplicate.
    """
    base = source_ref[source_ref.rfind("/") + 1 :]
    dot = base.rfind(".")
    if dot > 0 and base[:dot].strip("."):
        stem, suffix = base[:dot], base[dot:].lower()
    else:
        stem, suffix = base, ""
    if not _SAFE.fullmatch(stem):
        stem = _UNSAFE.sub("_", stem).strip("_")[:NAME_STEM_MAX] or "image"
    digest = hashlib.sha1(source_ref.encode("utf-8")).hexdigest()[:16]  # 64 bits: no clash among millions
    return f"{stem}_{digest}_dup{copy}{suffix}" if copy else f"{stem}_{digest}{suffix}"


def output_names(source_refs: pd.Series, copies: pd.Series) -> list[str]:
    """:func:`output_name` for every image of a plan."""
    return [output_name(ref, copy) for ref, copy in zip(source_refs.tolist(), copies.tolist(), strict=True)]


def label_name(image_name: str) -> str:
    """The label file for an output image name (ultralytics swaps the last suffix for ``.txt``)."""
    return os.path.splitext(image_name)[0] + ".txt"
