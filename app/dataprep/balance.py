"""Class balancing of the train split (val/test stay representative): caps, oversampling, class weights.

Strategies are data, never class names (``--balance SPEC``, repeatable, applied in the order given):

- ``cap-images=N``: at most N train images per class.
- ``cap-instances=N``: at most N train boxes per class.
- ``max-ratio=R``: cap images per class so the max/min class image ratio is at most R.
- ``oversample[=R]``: repeat train images of minority classes until each class has at least max/R images
  (R defaults to 1; an image is repeated at most ``MAX_REPEAT`` times).
- ``class-weights``: change nothing, report inverse-frequency class weights.

Caps keep an image only while every class it contains is under the cap, visiting images that hold the rarest
classes first, so a cap is never exceeded and rare classes lose as little as possible. Dropping an image drops
its labels. The report says, per strategy, whether the bound was met and if not why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.contracts.dataset import TRAIN, ClassCount, SplitCounts
from app.dataprep.errors import DataprepError
from app.dataprep.split import image_class_pairs, seeded_hash

MAX_REPEAT = 10
STRATEGIES = ("cap-images", "cap-instances", "max-ratio", "oversample", "class-weights", "none")


@dataclass(frozen=True)
class Strategy:
    kind: str
    value: float | None = None

    @property
    def spec(self) -> str:
        return self.kind if self.value is None else f"{self.kind}={self.value:g}"


def parse_strategy(spec: str) -> Strategy:
    """``cap-images=500`` -> Strategy; a clear message for anything else."""
    kind, _, raw = spec.partition("=")
    kind = kind.strip()
    if kind not in STRATEGIES:
        raise DataprepError(f"--balance {spec!r}: unknown strategy; expected one of {', '.join(STRATEGIES)}")
    needs_value = kind in ("cap-images", "cap-instances", "max-ratio")
    if not raw:
        if needs_value:
            raise DataprepError(f"--balance {spec!r}: expected a value, e.g. {kind}=3")
        return Strategy(kind)
    if kind in ("class-weights", "none"):
        raise DataprepError(f"--balance {spec!r}: '{kind}' takes no value")
    try:
        value = float(raw)
    except ValueError:
        raise DataprepError(f"--balance {spec!r}: expected a number after '='") from None
    if not math.isfinite(value) or value < 1 or (kind.startswith("cap") and value != int(value)):
        what = "an integer >= 1" if kind.startswith("cap") else "a number >= 1"
        raise DataprepError(f"--balance {spec!r}: expected {what}")
    return Strategy(kind, value)


def count_by_split(images: pd.DataFrame, boxes: pd.DataFrame, class_names: list[str]) -> SplitCounts:
    """split -> class name -> {images, boxes}; every class appears in every split present (zeros included)."""
    order = ("train", "val", "test")
    present = [s for s in order if (images["split"].to_numpy() == s).any()]
    code = np.zeros(len(images), dtype=np.int64)
    for i, split in enumerate(present):
        code[images["split"].to_numpy() == split] = i
    n = len(class_names)
    img = boxes["image"].to_numpy()
    cls = boxes["cls"].to_numpy()
    n_boxes = np.bincount(code[img] * n + cls, minlength=len(present) * n)
    pair_img, pair_cls = image_class_pairs(img, cls, len(images), n)
    n_images = np.bincount(code[pair_img] * n + pair_cls, minlength=len(present) * n)
    return {
        split: {
            name: ClassCount(images=int(n_images[i * n + c]), boxes=int(n_boxes[i * n + c]))
            for c, name in enumerate(class_names)
        }
        for i, split in enumerate(present)
    }


@dataclass
class BalanceResult:
    images: pd.DataFrame  # adds column ``copy`` (0 = original, k = k-th oversampled duplicate)
    boxes: pd.DataFrame
    report: dict[str, object] = field(default_factory=dict)


class _Train:
    """Per-image class/box counts of the train split, as flat arrays for fast greedy passes."""

    def __init__(self, images: pd.DataFrame, boxes: pd.DataFrame, n_classes: int, seed: int) -> None:
        train = images["split"].to_numpy() == TRAIN
        self.ids = np.flatnonzero(train)
        b = boxes[train[boxes["image"].to_numpy()]]
        pairs = b.groupby(["image", "cls"]).size()
        img = pairs.index.get_level_values(0).to_numpy()
        self.cls = pairs.index.get_level_values(1).to_numpy()
        self.cnt = pairs.to_numpy()
        starts = np.searchsorted(img, self.ids, side="left")
        ends = np.searchsorted(img, self.ids, side="right")
        self.spans = np.stack([starts, ends], axis=1)
        self.n_classes = n_classes
        freq = (
            np.bincount(self.cls, minlength=n_classes)
            if self.cls.size
            else np.zeros(n_classes, dtype=np.int64)
        )
        rarest = np.full(len(self.ids), np.iinfo(np.int64).max)
        if self.cls.size:
            owner = np.repeat(np.arange(len(self.ids)), ends - starts)
            np.minimum.at(rarest, owner, freq[self.cls])
        self.hash = seeded_hash(images["source_ref"].iloc[self.ids].reset_index(drop=True), seed)
        # rare-first, then a seeded shuffle
        self.order = np.lexsort((self.hash, rarest))

    def counts(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(images per class, boxes per class) over the kept train images."""
        mask = np.repeat(keep, self.spans[:, 1] - self.spans[:, 0])
        imgs = np.bincount(self.cls[mask], minlength=self.n_classes)
        bxs = np.bincount(self.cls[mask], weights=self.cnt[mask], minlength=self.n_classes).astype(np.int64)
        return imgs, bxs

    def cap(self, keep: np.ndarray, limit: int, by_boxes: bool) -> np.ndarray:
        imgs, bxs = self.counts(keep)
        if (bxs if by_boxes else imgs).max(initial=0) <= limit:
            return keep.copy()  # nothing over the cap: the greedy pass would keep everything
        # plain lists: per-image numpy calls would cost more than the arithmetic
        used = [0] * self.n_classes
        out = np.zeros_like(keep)
        cls, cnt, spans, alive = self.cls.tolist(), self.cnt.tolist(), self.spans.tolist(), keep.tolist()
        for i in self.order.tolist():
            if not alive[i]:
                continue
            s, e = spans[i]
            if by_boxes:
                if all(used[cls[j]] + cnt[j] <= limit for j in range(s, e)):
                    for j in range(s, e):
                        used[cls[j]] += cnt[j]
                    out[i] = True
            elif all(used[cls[j]] < limit for j in range(s, e)):
                for j in range(s, e):
                    used[cls[j]] += 1
                out[i] = True
        return out


def _ratio(imgs: np.ndarray) -> float:
    present = imgs[imgs > 0]
    if imgs.size == 0 or present.size < imgs.size:
        return math.inf
    return float(present.max() / present.min())


def balance(
    images: pd.DataFrame,
    boxes: pd.DataFrame,
    class_names: list[str],
    strategies: list[Strategy],
    seed: int = 0,
) -> BalanceResult:
    """Apply ``strategies`` to the train split; return the new frames and a report of every step."""
    n_classes = len(class_names)
    images = images.assign(copy=0)
    train = _Train(images, boxes, n_classes, seed)
    keep = np.ones(len(train.ids), dtype=bool)
    steps: list[dict[str, object]] = []
    repeats = np.zeros(len(train.ids), dtype=np.int64)
    weights: dict[str, float | None] | None = None
    for strategy in strategies:
        imgs_before, _ = train.counts(keep)
        step: dict[str, object] = {"strategy": strategy.spec}
        if strategy.kind in ("cap-images", "cap-instances"):
            limit = int(strategy.value or 0)
            by_boxes = strategy.kind == "cap-instances"
            keep = train.cap(keep, limit, by_boxes)
            imgs, bxs = train.counts(keep)
            worst = int((bxs if by_boxes else imgs).max(initial=0))
            step.update(bound=limit, achieved=worst, bound_met=worst <= limit)
            _explain_losses(step, class_names, imgs_before, imgs)
        elif strategy.kind == "max-ratio":
            target = float(strategy.value or 1)
            start = keep.copy()
            imgs = imgs_before
            for _ in range(5):  # shrink the cap while co-occurrence keeps pulling the smallest class down
                present = imgs[imgs > 0]
                if present.size < n_classes or present.size == 0:
                    break
                limit = max(1, math.floor(target * int(present.min())))
                keep = train.cap(start, limit, by_boxes=False)
                imgs, _ = train.counts(keep)
                if _ratio(imgs) <= target:
                    break
            ratio = _ratio(imgs)
            step.update(bound=target, achieved=None if math.isinf(ratio) else round(ratio, 3))
            step["bound_met"] = ratio <= target
            if ratio > target:
                step["why_not"] = _why_ratio_unmet(class_names, imgs_before, imgs, target)
            _explain_losses(step, class_names, imgs_before, imgs)
        elif strategy.kind == "oversample":
            target_ratio = float(strategy.value or 1)
            repeats = _oversample(train, keep, repeats, target_ratio)
            base, _ = train.counts(keep)
            imgs = base + _repeat_counts(train, repeats)
            ratio = _ratio(imgs)
            step.update(bound=target_ratio, achieved=None if math.isinf(ratio) else round(ratio, 3))
            step["bound_met"] = ratio <= target_ratio
            step["copies_added"] = int(repeats.sum())
            if ratio > target_ratio:
                step["why_not"] = (
                    _why_ratio_unmet(class_names, imgs_before, imgs, target_ratio)
                    + f"; at most {MAX_REPEAT} copies of an image are made"
                )
        elif strategy.kind == "class-weights":
            _, bxs = train.counts(keep)
            bxs = bxs + _repeat_counts(train, repeats, boxes=True)
            total = int(bxs.sum())
            weights = {
                name: (round(total / (n_classes * int(b)), 6) if b else None)
                for name, b in zip(class_names, bxs, strict=True)
            }
            step["weights"] = weights
        steps.append(step)

    repeats[~keep] = 0  # a later cap may have dropped an image an earlier oversample repeated
    dropped = train.ids[~keep]
    if dropped.size:
        alive = np.ones(len(images), dtype=bool)
        alive[dropped] = False
        images, boxes = _select(images, boxes, alive)
    if repeats.any():
        images, boxes = _add_copies(images, boxes, train, keep, repeats)
    report: dict[str, object] = {
        "applies_to": TRAIN,
        "strategies": [s.spec for s in strategies],
        "steps": steps,
        "train_images_dropped": int(dropped.size),
        "train_copies_added": int(repeats.sum()),
    }
    if weights is not None:
        report["class_weights"] = weights
    return BalanceResult(images=images, boxes=boxes, report=report)


def _explain_losses(step: dict[str, object], names: list[str], before: np.ndarray, after: np.ndarray) -> None:
    lost = {names[i]: int(before[i] - after[i]) for i in range(len(names)) if after[i] < before[i]}
    if lost:
        step["images_removed_per_class"] = lost


def _why_ratio_unmet(names: list[str], before: np.ndarray, after: np.ndarray, target: float) -> str:
    empty = [names[i] for i in range(len(names)) if after[i] == 0]
    if empty:
        return f"class(es) {', '.join(empty)} have no train images, so no ratio bound can hold"
    small = int(np.argmin(after))
    big = int(np.argmax(after))
    reason = (
        f"'{names[big]}' has {after[big]} train images and '{names[small]}' only {after[small]} "
        f"(ratio {after[big] / after[small]:.2f} > {target:g})"
    )
    if after[small] < before[small]:
        reason += (
            f"; '{names[small]}' lost {before[small] - after[small]} images that also held capped classes"
        )
    return reason


def _repeat_counts(train: _Train, repeats: np.ndarray, boxes: bool = False) -> np.ndarray:
    per_pair = np.repeat(repeats, train.spans[:, 1] - train.spans[:, 0])
    weights = per_pair * (train.cnt if boxes else 1)
    return np.bincount(train.cls, weights=weights, minlength=train.n_classes).astype(np.int64)


def _oversample(train: _Train, keep: np.ndarray, repeats: np.ndarray, target_ratio: float) -> np.ndarray:
    repeats = repeats.copy()
    base, _ = train.counts(keep)
    imgs = base + _repeat_counts(train, repeats)
    target = math.ceil(imgs.max(initial=0) / target_ratio)
    owner = np.repeat(np.arange(len(train.ids)), train.spans[:, 1] - train.spans[:, 0])
    for c in np.argsort(imgs, kind="stable"):
        if imgs[c] == 0 or imgs[c] >= target:
            continue
        holders = np.unique(owner[train.cls == c])
        holders = holders[keep[holders]]
        holders = holders[np.argsort(train.hash[holders], kind="stable")]
        while imgs[c] < target:
            room = holders[repeats[holders] < MAX_REPEAT]
            if room.size == 0:
                break
            for i in room:
                if imgs[c] >= target:
                    break
                repeats[i] += 1
                s, e = train.spans[i]
                imgs[train.cls[s:e]] += 1
    return repeats


def _select(
    images: pd.DataFrame, boxes: pd.DataFrame, alive: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    new_index = np.cumsum(alive) - 1
    boxes = boxes[alive[boxes["image"].to_numpy()]].copy()
    boxes["image"] = new_index[boxes["image"].to_numpy()]
    return images[alive].reset_index(drop=True), boxes.reset_index(drop=True)


def _add_copies(
    images: pd.DataFrame, boxes: pd.DataFrame, train: _Train, keep: np.ndarray, repeats: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Append oversampled duplicates (train only) after the originals; boxes follow their image."""
    alive = np.ones(len(images) + int((~keep).sum()), dtype=bool)
    alive[train.ids[~keep]] = False
    new_index = np.cumsum(alive) - 1  # original image id -> row after drops
    src_rows = np.repeat(new_index[train.ids], repeats)
    copy_no = np.concatenate([np.arange(1, r + 1) for r in repeats if r]) if repeats.any() else np.zeros(0)
    extra = images.iloc[src_rows].assign(copy=copy_no.astype(np.int64))
    first_new = len(images)
    images = pd.concat([images, extra], ignore_index=True)
    dup_of = pd.Series(np.arange(first_new, first_new + len(src_rows)), index=src_rows)
    b = boxes.merge(dup_of.rename("new").rename_axis("image").reset_index(), on="image", how="inner")
    b["image"] = b.pop("new")
    boxes = pd.concat([boxes, b[boxes.columns]], ignore_index=True)
    if not (images.loc[images["copy"] > 0, "split"] == TRAIN).all():
        raise DataprepError("internal: oversampled copies must stay in train")  # guard for future edits
    return images, boxes
