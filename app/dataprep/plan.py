"""The dataset plan: parse -> validate -> YOLO geometry -> split -> balance -> version and shards.

A plan is a pure function of the manifest bytes and the options, so every Processing instance computes the same
one and copies only its shard (``image_row % shard_count == shard_index``); metadata files are identical on
every shard. Planning touches no image bytes, keeping 1M boxes in a few hundred MB.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.contracts.dataset import SCHEMA_VERSION, TRAIN, VAL, ClassEntry, DatasetInfo, SplitCounts
from app.dataprep.balance import balance, count_by_split, parse_strategy
from app.dataprep.errors import DataprepError
from app.dataprep.manifest import ParsedManifest, Reject, parse_manifest
from app.dataprep.split import assign_splits
from app.dataprep.yolo import output_names, to_yolo

REJECTS_FILE = "qa/rejects.jsonl"
SKIP = "skip"  # Reject.scope of a region the label format's convention leaves out (see Plan.reject_fraction)
XYWH = ["cx", "cy", "w", "h"]


@dataclass(frozen=True)
class PlanOptions:
    label_attribute: str | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    seed: int = 0
    group_by: str | None = None
    balance: tuple[str, ...] = ()
    max_reject_fraction: float = 0.05


@dataclass
class Plan:
    """Everything needed to write the dataset, identical on every shard."""

    source_manifest: str
    options: PlanOptions
    parsed: ParsedManifest
    images: pd.DataFrame  # line, source_ref, width, height, split, copy
    boxes: pd.DataFrame  # image, line, cls, cx, cy, w, h (normalised)
    counts_before: SplitCounts
    counts_after: SplitCounts
    balancing: dict[str, object]
    version: str = ""
    extra_rejects: list[Reject] = field(default_factory=list)

    @property
    def classes(self) -> list[ClassEntry]:
        return self.parsed.classes

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def rejects(self) -> list[Reject]:
        return sorted([*self.parsed.rejects, *self.extra_rejects], key=lambda r: (r.line, r.scope))

    @property
    def reject_fraction(self) -> float:
        affected = len(self._affected_lines())
        return affected / self.parsed.records if self.parsed.records else 0.0

    def _affected_lines(self) -> set[int]:
        """Records rejected or trimmed; regions a format's own convention leaves out (scope "skip", e.g. COCO crowd
        regions) are listed in the rejects file but are not a data problem."""
        return {r.line for r in self.rejects if r.scope != SKIP}

    def rejected_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejects:
            out[r.reason] = out.get(r.reason, 0) + 1
        return dict(sorted(out.items()))

    def names(self, rows: np.ndarray) -> list[str]:
        """Output file names of ``rows`` (a pure function of source-ref and copy number, so any shard can name
        its own images without naming all of them)."""
        picked = self.images.iloc[rows]
        return output_names(picked["source_ref"], picked["copy"])

    def shard_rows(self, index: int, count: int) -> np.ndarray:
        if count < 1 or not 0 <= index < count:
            raise DataprepError(f"--shard-index {index} / --shard-count {count}: expected 0 <= index < count")
        return np.arange(index, len(self.images), count)

    def check_rejects(self, rejects_location: str) -> None:
        limit = self.options.max_reject_fraction
        if self.reject_fraction > limit:
            affected = len(self._affected_lines())
            raise DataprepError(
                f"{self.source_manifest}: {affected} of {self.parsed.records} records rejected or trimmed "
                f"({self.reject_fraction:.1%}) > --max-reject-fraction {limit:g}; reasons "
                f"{self.rejected_by_reason()}; details in {rejects_location}"
            )

    def dataset_info(self) -> DatasetInfo:
        splits = self.images["split"].value_counts()
        return DatasetInfo(
            schema_version=SCHEMA_VERSION,
            version=self.version,
            source_manifest=self.source_manifest,
            label_attribute=self.parsed.label_attribute,
            label_format=self.parsed.label_format,
            classes=self.classes,
            splits={s: int(splits.get(s, 0)) for s in self.counts_after},
            counts_before_balancing=self.counts_before,
            counts_after_balancing=self.counts_after,
            seed=self.options.seed,
            balancing=self.balancing,
            rejected=self.rejected_by_reason(),
            rejects_file=REJECTS_FILE,
            # additions beyond the contract's required fields
            records_read=self.parsed.records,
            boxes_clipped=len(self.parsed.clipped_lines),
            val_fraction=self.options.val_fraction,
            test_fraction=self.options.test_fraction,
            group_by=self.options.group_by,
            qa_report="qa/report.json",
        )


SizeCheck = Callable[[pd.DataFrame], list[Reject]]


def build_plan(
    manifest: Path,
    options: PlanOptions,
    source_uri: str | None = None,
    size_check: SizeCheck | None = None,
    parsed: ParsedManifest | None = None,
) -> Plan:
    """Plan the dataset for ``manifest`` (a local file; ``source_uri`` is what to record, e.g. its s3:// URI).

    ``size_check`` (see app.dataprep.verify) may reject images whose real size differs from the manifest.
    ``parsed``: labels already read by another format's reader (app.dataprep.labels); the rest is the same.
    """
    strategies = [parse_strategy(s) for s in options.balance]
    if not 0 <= options.max_reject_fraction <= 1:
        raise DataprepError(
            f"--max-reject-fraction {options.max_reject_fraction}: expected a number in [0, 1]"
        )
    if parsed is None:
        parsed = parse_manifest(manifest, options.label_attribute)
    if parsed.images.empty:
        raise DataprepError(
            f"{source_uri or manifest}: no usable records out of {parsed.records} "
            f"(rejected: {_reasons(parsed.rejects)}); expected at least 2 labelled images"
        )
    if not parsed.classes:
        raise DataprepError(
            f"{source_uri or manifest}: no classes; expected "
            + {
                "coco": "a 'categories' list",
                "yolo": "'names' in data.yaml",
            }.get(parsed.label_format, "'<attr>-metadata.class-map'")
        )
    extra: list[Reject] = []
    if size_check is not None:
        extra = size_check(parsed.images)
        _drop_images(parsed, {r.line for r in extra})
    images = parsed.images.copy()
    boxes = parsed.boxes
    images["split"] = assign_splits(
        images,
        boxes,
        val_fraction=options.val_fraction,
        test_fraction=options.test_fraction,
        seed=options.seed,
        group_by=options.group_by,
    )
    names = [c.name for c in parsed.classes]
    counts_before = count_by_split(images, boxes, names)
    result = balance(images, boxes, names, strategies, seed=options.seed)
    images, boxes = result.images, result.boxes
    for split in (TRAIN, VAL):
        if not (images["split"] == split).any():
            raise DataprepError(
                f"{source_uri or manifest}: split '{split}' is empty with {len(parsed.images)} usable images and "
                f"--val-fraction {options.val_fraction}; expected enough images for train and val"
            )
    counts_after = count_by_split(images, boxes, names)
    idx = boxes["image"].to_numpy()
    xywhn = to_yolo(
        boxes["x1"].to_numpy(),
        boxes["y1"].to_numpy(),
        boxes["x2"].to_numpy(),
        boxes["y2"].to_numpy(),
        images["width"].to_numpy()[idx],
        images["height"].to_numpy()[idx],
    )
    order = np.argsort(idx, kind="stable")  # boxes grouped by image, in manifest order within an image
    boxes = pd.DataFrame(
        {
            "image": idx[order],
            "line": boxes["line"].to_numpy()[order],
            "cls": boxes["cls"].to_numpy()[order],
            **{k: xywhn[order, i] for i, k in enumerate(XYWH)},
        }
    )
    plan = Plan(
        source_manifest=source_uri or str(manifest),
        options=options,
        parsed=parsed,
        images=images.reset_index(drop=True),
        boxes=boxes,
        counts_before=counts_before,
        counts_after=counts_after,
        balancing=result.report,
        extra_rejects=extra,
    )
    plan.version = content_version(plan)
    return plan


def content_version(plan: Plan) -> str:
    """sha256 over the class list, each image's split/source/copy/size and every label value (6 decimals).

    Images are identified by their source URI and size rather than their bytes, so every shard can compute the
    version without reading all images.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([c.model_dump() for c in plan.classes], sort_keys=True).encode())
    cols = plan.images[["split", "source_ref", "copy", "width", "height"]]
    digest.update(pd.util.hash_pandas_object(cols, index=False).to_numpy().tobytes())
    b = plan.boxes
    digest.update(b["image"].to_numpy(np.int64).tobytes())
    digest.update(b["cls"].to_numpy(np.int64).tobytes())
    digest.update(np.rint(b[XYWH].to_numpy() * 1_000_000).astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


def _reasons(rejects: list[Reject]) -> str:
    out: dict[str, int] = {}
    for r in rejects:
        out[r.reason] = out.get(r.reason, 0) + 1
    return ", ".join(f"{k}={v}" for k, v in sorted(out.items())) or "none"


def _drop_images(parsed: ParsedManifest, lines: set[int]) -> None:
    """Remove whole images (by manifest line) and their boxes from ``parsed``."""
    if not lines:
        return
    keep = ~parsed.images["line"].isin(lines).to_numpy()
    new_index = np.cumsum(keep) - 1
    boxes = parsed.boxes[keep[parsed.boxes["image"].to_numpy()]].copy()
    boxes["image"] = new_index[boxes["image"].to_numpy()]
    parsed.images = parsed.images[keep].reset_index(drop=True)
    parsed.boxes = boxes.reset_index(drop=True)
