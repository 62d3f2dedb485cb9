"""Label-free agreement of two detectors on one image: boxes matched one to one, same class name, IoU >= a bar.

Greedy by IoU, highest first (the way detection benchmarks pair predictions with ground truth): each box is in at most
one pair. Classes are compared by name, so two models with different class lists still compare on the names they
share; a class only one model knows shows up as that model's unmatched boxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_IOU = 0.5


@dataclass
class ClassCounts:
    """Boxes of one class over many images: ``matched`` pairs, and boxes only one model found."""

    matched: int = 0
    only_candidate: int = 0
    only_champion: int = 0

    @property
    def union(self) -> int:
        return self.matched + self.only_candidate + self.only_champion

    @property
    def agreement(self) -> float:
        """matched / union; 1.0 when neither model found anything (nothing to disagree on)."""
        return self.matched / self.union if self.union else 1.0

    def add(self, other: ClassCounts) -> None:
        self.matched += other.matched
        self.only_candidate += other.only_candidate
        self.only_champion += other.only_champion


@dataclass
class ImageAgreement:
    """One image: per class counts and which boxes of each model found a partner."""

    classes: dict[str, ClassCounts] = field(default_factory=dict)
    candidate_matched: list[bool] = field(default_factory=list)
    champion_matched: list[bool] = field(default_factory=list)

    @property
    def total(self) -> ClassCounts:
        total = ClassCounts()
        for counts in self.classes.values():
            total.add(counts)
        return total


def _xyxy(detections: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array(
        [[d["box"]["x1"], d["box"]["y1"], d["box"]["x2"], d["box"]["y2"]] for d in detections],
        dtype=np.float64,
    ).reshape(-1, 4)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4] (xyxy) -> [N, M]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match(
    candidate: Sequence[Mapping[str, Any]], champion: Sequence[Mapping[str, Any]], *, iou: float = DEFAULT_IOU
) -> ImageAgreement:
    """Pair the contract detections (``label``, ``box``) of two models on one image."""
    result = ImageAgreement(
        candidate_matched=[False] * len(candidate), champion_matched=[False] * len(champion)
    )
    labels: Iterable[str] = sorted({d["label"] for d in candidate} | {d["label"] for d in champion})
    for label in labels:
        ci = [i for i, d in enumerate(candidate) if d["label"] == label]
        hi = [j for j, d in enumerate(champion) if d["label"] == label]
        pairs = 0
        if ci and hi:
            overlaps = iou_matrix(_xyxy([candidate[i] for i in ci]), _xyxy([champion[j] for j in hi]))
            order = np.argsort(-overlaps, axis=None, kind="stable")
            used_c, used_h = set(), set()
            for flat in order:
                r, c = divmod(int(flat), len(hi))
                if overlaps[r, c] < iou:
                    break
                if r in used_c or c in used_h:
                    continue
                used_c.add(r)
                used_h.add(c)
                result.candidate_matched[ci[r]] = True
                result.champion_matched[hi[c]] = True
            pairs = len(used_c)
        result.classes[label] = ClassCounts(pairs, len(ci) - pairs, len(hi) - pairs)
    return result
