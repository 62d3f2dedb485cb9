"""Refuse an ``--out`` that already holds another dataset: stale images would be trained on with the new ones.

ultralytics reads every image under ``images/<split>/``, so files left by an earlier run of a different plan would
silently join the new dataset. Allowed: an empty or missing ``--out``, or one holding only this plan's files
(a re-run of the same plan, or the images other shards of this plan already wrote).
"""

from __future__ import annotations

import json

import numpy as np

from app.contracts.dataset import DATASET_JSON, IMAGES_DIR, LABELS_DIR
from app.dataprep.errors import DataprepError
from app.dataprep.plan import Plan
from app.dataprep.storage import Destination
from app.dataprep.yolo import label_name


def planned_files(plan: Plan) -> set[str]:
    """Every image and label key of the whole plan (all shards)."""
    names = plan.names(np.arange(len(plan.images)))
    splits = plan.images["split"].tolist()
    images = {f"{IMAGES_DIR}/{s}/{n}" for s, n in zip(splits, names, strict=True)}
    labels = {f"{LABELS_DIR}/{s}/{label_name(n)}" for s, n in zip(splits, names, strict=True)}
    return images | labels


def check_out(plan: Plan, dest: Destination) -> None:
    """Raise DataprepError (one line naming the folder and what is expected) when ``dest`` holds another dataset."""
    expected = f"expected an empty --out or a re-run of the same plan (version {plan.version})"
    raw = dest.read_bytes(DATASET_JSON)
    if raw is not None:
        try:
            version = json.loads(raw).get("version")
        except (ValueError, AttributeError):
            version = "<unreadable>"
        if version != plan.version:
            raise DataprepError(
                f"{dest.location(DATASET_JSON)}: --out already holds dataset version {version}; {expected}"
            )
    planned = planned_files(plan)
    stale = [
        key
        for folder in (IMAGES_DIR, LABELS_DIR)
        for key in dest.list_files(folder)
        if key not in planned and not key.rsplit("/", 1)[-1].startswith(".")  # our own temp files
    ]
    if stale:
        raise DataprepError(
            f"{dest.uri}: --out holds {len(stale)} images/labels file(s) not in this plan (e.g. {stale[0]}); "
            f"{expected}"
        )
