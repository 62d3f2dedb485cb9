"""The int8 gate: ship the int8 model only when the evidence says its accuracy holds.

One aggregate mAP50-95 on a small val split is noise (a few boxes move it by points), so the decision rests on:

* a paired bootstrap over val images: both precisions are scored on the same resampled images, and the one-sided
  upper bound of the drop (``CONFIDENCE``) must be <= the bar - "within the bar with confidence";
* no class losing more than a per-class bar (a class collapsing among twenty classes barely moves the mean);
* enough evidence: fewer val images than ``min_images`` is ``underpowered`` - not shipped, whatever the numbers.

plus a label-free agreement figure (fp32 vs int8 boxes on train and val images), recorded, not gated on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.training.bootstrap import RESAMPLES, SEED, paired_bootstrap
from app.training.evaluation import ImageStats, average_precision

CONFIDENCE = 0.95  # one-sided: the drop is below the bound in 95% of the resamples
AGREEMENT_CONF = 0.25  # ultralytics' predict default
AGREEMENT_IOU = 0.5
DECIMALS = 6  # numbers are compared as model.json records them, so "drop = bar" is exact


@dataclass(frozen=True)
class Decision:
    status: str  # shipped | rejected | underpowered
    reason: str
    evidence: dict[str, Any]

    @property
    def shipped(self) -> bool:
        return self.status == "shipped"


def paired_drops(
    fp32: Sequence[ImageStats], int8: Sequence[ImageStats], *, resamples: int = RESAMPLES, seed: int = SEED
) -> np.ndarray:
    """mAP50-95(fp32) - mAP50-95(int8) on ``resamples`` bootstrap resamples of the val images (app.training.bootstrap)."""

    def drop(a: list[ImageStats], b: list[ImageStats]) -> float:
        x, y = average_precision(a)["mAP50-95"], average_precision(b)["mAP50-95"]
        return (0.0 if np.isnan(x) else x) - (0.0 if np.isnan(y) else y)

    return paired_bootstrap(fp32, int8, drop, what="two precisions", resamples=resamples, seed=seed)


def class_drops(
    fp32: Sequence[ImageStats], int8: Sequence[ImageStats], class_names: Sequence[str]
) -> dict[str, float]:
    """Per class with val instances: its AP50-95 at fp32 minus at int8 (a class int8 never finds scores 0)."""
    a = average_precision(fp32)["classes"]
    b = average_precision(int8)["classes"]
    return {
        class_names[c]: round(row["AP50-95"] - b.get(c, {"AP50-95": 0.0})["AP50-95"], DECIMALS)
        for c, row in a.items()
    }


def decide(
    *,
    images: int,
    drop: float,
    drop_upper: float,
    per_class: dict[str, float],
    max_drop: float,
    max_class_drop: float,
    min_images: int,
) -> tuple[str, str]:
    """(status, reason) from the measured numbers and the bars; every number is rounded as recorded first."""
    drop, drop_upper = round(drop, DECIMALS), round(drop_upper, DECIMALS)
    worst = max(per_class.items(), key=lambda kv: kv[1], default=("-", 0.0))
    if images < min_images:
        return "underpowered", (
            f"underpowered: {images} val images < {min_images} (int8_min_val_images): too little evidence to "
            f"ship int8 (drop {drop:.4f}, upper bound {drop_upper:.4f}); serving uses fp32"
        )
    if drop_upper > round(max_drop, DECIMALS):
        return "rejected", (
            f"rejected: mAP50-95 drop {drop:.4f}, {CONFIDENCE:.0%} upper bound {drop_upper:.4f} > {max_drop:.4f} "
            "(int8_max_map_drop); serving uses fp32"
        )
    if round(worst[1], DECIMALS) > round(max_class_drop, DECIMALS):
        return "rejected", (
            f"rejected: class '{worst[0]}' loses {worst[1]:.4f} mAP50-95 > {max_class_drop:.4f} "
            "(int8_max_class_drop); serving uses fp32"
        )
    return "shipped", (
        f"mAP50-95 drop {drop:.4f}, {CONFIDENCE:.0%} upper bound {drop_upper:.4f} <= {max_drop:.4f}; worst class "
        f"'{worst[0]}' {worst[1]:.4f} <= {max_class_drop:.4f}; {images} val images"
    )


def gate(
    fp32: Sequence[ImageStats],
    int8: Sequence[ImageStats],
    *,
    class_names: Sequence[str],
    max_drop: float,
    max_class_drop: float,
    min_images: int,
) -> Decision:
    """Decide on the per-image numbers of both precisions (see module docstring)."""
    drop = average_precision(fp32)["mAP50-95"] - average_precision(int8)["mAP50-95"]
    drops = paired_drops(fp32, int8)
    upper = float(np.quantile(drops, CONFIDENCE))
    per_class = class_drops(fp32, int8, class_names)
    status, reason = decide(
        images=len(fp32),
        drop=drop,
        drop_upper=upper,
        per_class=per_class,
        max_drop=max_drop,
        max_class_drop=max_class_drop,
        min_images=min_images,
    )
    evidence = {
        "val_images": len(fp32),
        "val_instances": int(sum(len(i.target_cls) for i in fp32)),
        "map50_95_drop": round(drop, DECIMALS),
        "map50_95_drop_upper": round(upper, DECIMALS),
        "bootstrap": {
            "resamples": len(drops),
            "confidence": CONFIDENCE,
            "seed": SEED,
            "paired_over": "val images",
        },
        "class_drops": per_class,
        "min_val_images": min_images,
    }
    return Decision(status=status, reason=reason, evidence=evidence)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes a [N, 4] x b [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def matched(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> int:
    """Greedy one-to-one matches of boxes (xyxy, class) between two predictions: same class, IoU >= AGREEMENT_IOU."""
    (boxes_a, cls_a), (boxes_b, cls_b) = a, b
    if not len(boxes_a) or not len(boxes_b):
        return 0
    iou = _iou(boxes_a, boxes_b) * (cls_a[:, None] == cls_b[None, :])
    count = 0
    while iou.size and iou.max() >= AGREEMENT_IOU:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        iou[i, :], iou[:, j] = 0, 0
        count += 1
    return count


def agreement(fp32: Path, int8: Path, images: Sequence[Path], *, imgsz: int) -> dict[str, Any]:
    """Label-free: how many confident boxes the two precisions agree on (F1 of the matching: 1.0 = identical)."""
    from ultralytics import YOLO

    def boxes(model: Path) -> list[tuple[np.ndarray, np.ndarray]]:
        yolo = YOLO(str(model), task="detect")
        out = []
        for path in images:
            (result,) = yolo.predict(str(path), imgsz=imgsz, conf=AGREEMENT_CONF, device="cpu", verbose=False)
            found: Any = result.boxes  # type: ignore[union-attr]
            out.append((found.xyxy.cpu().numpy(), found.cls.cpu().numpy()))
        return out

    a, b = boxes(fp32), boxes(int8)
    both = sum(matched(x, y) for x, y in zip(a, b, strict=True))
    n_a, n_b = sum(len(x[0]) for x in a), sum(len(y[0]) for y in b)
    return {
        "images": len(images),
        "conf": AGREEMENT_CONF,
        "iou": AGREEMENT_IOU,
        "fp32_boxes": n_a,
        "int8_boxes": n_b,
        "matched": both,
        "agreement": round(2 * both / (n_a + n_b), 4) if n_a + n_b else 1.0,
    }
