"""Write a planned dataset (see app.contracts.dataset): this shard's images + labels, then the metadata files.

Metadata (``data.yaml``, ``dataset.json``, ``qa/*``) depends on the plan only, so every shard writes the same
bytes and any number of shards together make one consistent dataset. With several shards the metadata is the
commit: it is written only once every shard's images are there (see app.dataprep.shards), because dataset.json
arriving in the datasets bucket starts training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import yaml

from app.contracts.dataset import DATA_YAML, DATASET_JSON, IMAGES_DIR, LABELS_DIR, SPLITS
from app.dataprep import qa, shards
from app.dataprep.errors import DataprepError
from app.dataprep.plan import REJECTS_FILE, XYWH, Plan
from app.dataprep.storage import Destination, ImageSource, run_parallel
from app.dataprep.yolo import format_label_lines, label_name


@dataclass(frozen=True)
class WriteResult:
    images: int
    labels: int
    committed: bool = True  # False: this shard is done, but other shards' images are still missing


def data_yaml(plan: Plan) -> bytes:
    """ultralytics data.yaml; no ``path`` key so ultralytics resolves splits relative to this file."""
    present = [s for s in SPLITS if (plan.images["split"] == s).any()]
    doc: dict[str, object] = {s: f"{IMAGES_DIR}/{s}" for s in present}
    doc["nc"] = len(plan.classes)
    doc["names"] = {c.id: c.name for c in plan.classes}
    header = f"# written by app.dataprep; dataset version {plan.version}; source {plan.source_manifest}\n"
    return (header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)).encode()


def rejects_jsonl(plan: Plan) -> bytes:
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in plan.rejects).encode()


def write_qa(plan: Plan, dest: Destination) -> None:
    """The rejects file and QA report; also written when the run then fails on too many rejects."""
    dest.write_bytes(REJECTS_FILE, rejects_jsonl(plan))
    dest.write_bytes("qa/report.json", qa.report_json(plan))
    dest.write_bytes("qa/summary.txt", qa.summary_text(plan).encode())


def write_metadata(plan: Plan, dest: Destination) -> None:
    write_qa(plan, dest)
    dest.write_bytes("qa/class_distribution.png", qa.distribution_png(plan))
    dest.write_bytes(DATA_YAML, data_yaml(plan))
    info = plan.dataset_info()
    dest.write_bytes(DATASET_JSON, (info.model_dump_json(indent=2) + "\n").encode())


def write_dataset(
    plan: Plan,
    dest: Destination,
    source: ImageSource,
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    workers: int = 16,
    progress: bool = False,
    link: bool = False,
) -> WriteResult:
    """Copy this shard's images and write their labels in parallel, then the (shard-independent) metadata."""
    rows = plan.shard_rows(shard_index, shard_count)
    images = plan.images
    names = dict(zip(rows.tolist(), plan.names(rows), strict=True))
    splits = images["split"].to_numpy()
    refs = images["source_ref"].to_numpy()
    box_img = plan.boxes["image"].to_numpy()
    cls = plan.boxes["cls"].to_numpy()
    xywhn = plan.boxes[XYWH].to_numpy()
    starts = np.searchsorted(box_img, rows, side="left")
    ends = np.searchsorted(box_img, rows, side="right")

    def task(i: int, s: int, e: int) -> Callable[[], None]:
        def run() -> None:
            split, name = splits[i], names[i]
            dest.copy_image(source, source.resolve(refs[i]), f"{IMAGES_DIR}/{split}/{name}", link=link)
            text = format_label_lines(cls[s:e], xywhn[s:e])
            dest.write_bytes(f"{LABELS_DIR}/{split}/{label_name(name)}", text.encode())

        return run

    tasks = (task(int(i), int(s), int(e)) for i, s, e in zip(rows, starts, ends, strict=True))
    errors = run_parallel(
        tasks, total=len(rows), workers=workers, progress=progress, desc=f"shard {shard_index}/{shard_count}"
    )
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DataprepError(f"{len(errors)} of {len(rows)} images failed to copy: {errors[0]}{more}")
    if shard_count > 1:
        shards.mark_done(dest, shard_index, shard_count, plan.version)
        if not shards.all_done(dest, shard_count, plan.version):
            return WriteResult(images=len(rows), labels=len(rows), committed=False)
        # Two shards finishing together may both get here and both write the metadata: the bytes are identical
        # (a function of the plan alone) and the training launcher is idempotent on the same dataset URI.
    write_metadata(plan, dest)
    return WriteResult(images=len(rows), labels=len(rows))
