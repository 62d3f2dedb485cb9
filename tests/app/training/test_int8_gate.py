"""The int8 gate on its boundaries: drop = bar ships, just above does not, too little evidence is 'underpowered',
and a class that collapses is rejected even when the mean barely moves. Per-image statistics are built in
ultralytics' own format (the validator's tp matrix, confidences, classes) and scored by ultralytics' ap_per_class."""

from __future__ import annotations

import numpy as np
import pytest

from app.training.evaluation import ImageStats, average_precision
from app.training.int8_gate import decide, gate

BARS = {"max_drop": 0.01, "max_class_drop": 0.05, "min_images": 100}


def _image(name: str, classes: list[int], found: list[bool]) -> ImageStats:
    """One image with one target per class in ``classes``; a confident, exact prediction for each ``found``."""
    hits = [c for c, f in zip(classes, found, strict=True) if f]
    return ImageStats(
        name=name,
        tp=np.ones((len(hits), 10), dtype=bool),
        conf=np.full(len(hits), 0.9),
        pred_cls=np.array(hits, dtype=float),
        target_cls=np.array(classes, dtype=float),
        pred_area=np.full(len(hits), 50.0**2),
        target_area=np.full(len(classes), 50.0**2),
    )


def test_a_drop_equal_to_the_bar_ships_and_just_above_does_not() -> None:
    common = {"images": 500, "drop": 0.004, "per_class": {"a": 0.0}, **BARS}
    assert decide(drop_upper=0.01, **common)[0] == "shipped"
    status, reason = decide(drop_upper=0.010001, **common)
    assert status == "rejected" and "(int8_max_map_drop)" in reason


def test_the_per_class_bar_is_inclusive_too() -> None:
    common = {"images": 500, "drop": 0.0, "drop_upper": 0.0, **BARS}
    assert decide(per_class={"a": 0.05}, **common)[0] == "shipped"
    assert decide(per_class={"a": 0.050001}, **common)[0] == "rejected"


def test_too_few_val_images_is_underpowered_never_shipped() -> None:
    status, reason = decide(images=99, drop=0.0, drop_upper=0.0, per_class={}, **BARS)
    assert status == "underpowered" and "99 val images < 100" in reason


def test_a_class_that_collapses_is_rejected_though_the_mean_barely_moves() -> None:
    """20 classes; int8 loses one class on a quarter of its images: the mean drops < 1 point, the class 15 points."""
    classes = list(range(20))
    rng = np.random.default_rng(0)
    fp32, int8 = [], []
    for i in range(200):
        present = sorted(rng.choice(classes, size=3, replace=False).tolist())
        fp32.append(_image(f"{i}.jpg", present, [True] * 3))
        int8.append(_image(f"{i}.jpg", present, [not (c == 7 and i % 7 == 0) for c in present]))
    names = [f"class{c}" for c in classes]
    mean_drop = average_precision(fp32)["mAP50-95"] - average_precision(int8)["mAP50-95"]
    decision = gate(fp32, int8, class_names=names, **BARS)
    assert mean_drop <= 0.01, "the setup must keep the mean within the bar"
    assert decision.status == "rejected" and "class 'class7'" in decision.reason
    assert decision.evidence["class_drops"]["class7"] > 0.05


def test_identical_precisions_ship_with_a_zero_bound() -> None:
    images = [_image(f"{i}.jpg", [i % 3], [True]) for i in range(120)]
    decision = gate(images, list(images), class_names=["a", "b", "c"], **BARS)
    assert decision.shipped, decision.reason
    assert decision.evidence["map50_95_drop_upper"] == pytest.approx(0.0)
    assert decision.evidence["val_images"] == 120 and decision.evidence["bootstrap"]["resamples"] >= 100


def test_the_bound_sees_the_noise_the_point_estimate_hides() -> None:
    """int8 misses a box on 1 image in 40: the point drop is under the bar, its upper bound is not."""
    fp32 = [_image(f"{i}.jpg", [0], [True]) for i in range(200)]
    int8 = [_image(f"{i}.jpg", [0], [i % 40 != 0]) for i in range(200)]
    decision = gate(fp32, int8, class_names=["a"], max_drop=0.03, max_class_drop=1.0, min_images=100)
    evidence = decision.evidence
    assert evidence["map50_95_drop"] <= 0.03 < evidence["map50_95_drop_upper"]
    assert decision.status == "rejected"
