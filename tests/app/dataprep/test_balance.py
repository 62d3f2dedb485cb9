"""Balancing strategies: bounds hold or the report says why; only train changes; labels follow their image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dataprep.balance import MAX_REPEAT, balance, count_by_split, parse_strategy
from app.dataprep.errors import DataprepError

NAMES = ["a", "b", "c"]


def frames(classes_per_image: list[list[int]], val_every: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(classes_per_image)
    images = pd.DataFrame(
        {
            "source_ref": [f"s3://b/img{i}.jpg" for i in range(n)],
            "split": ["val" if i % val_every == val_every - 1 else "train" for i in range(n)],
        }
    )
    pairs = [(i, c) for i, cs in enumerate(classes_per_image) for c in cs]
    boxes = pd.DataFrame(pairs or np.zeros((0, 2), dtype=int), columns=["image", "cls"]).astype("int64")
    boxes["box_id"] = np.arange(len(boxes))
    return images, boxes


image_classes = st.lists(st.lists(st.integers(0, 2), min_size=0, max_size=4), min_size=1, max_size=80)


def train_counts(images: pd.DataFrame, boxes: pd.DataFrame) -> tuple[list[int], list[int]]:
    per = count_by_split(images, boxes, NAMES).get("train", {})
    return [per[n].images if per else 0 for n in NAMES], [per[n].boxes if per else 0 for n in NAMES]


@settings(max_examples=60, deadline=None)
@given(image_classes, st.integers(1, 20))
def test_cap_images_is_never_exceeded(classes: list[list[int]], cap: int) -> None:
    images, boxes = frames(classes)
    result = balance(images, boxes, NAMES, [parse_strategy(f"cap-images={cap}")])
    imgs, _ = train_counts(result.images, result.boxes)
    assert max(imgs) <= cap and result.report["steps"][0]["bound_met"]


@settings(max_examples=60, deadline=None)
@given(image_classes, st.integers(1, 20))
def test_cap_instances_is_never_exceeded(classes: list[list[int]], cap: int) -> None:
    images, boxes = frames(classes)
    result = balance(images, boxes, NAMES, [parse_strategy(f"cap-instances={cap}")])
    _, bxs = train_counts(result.images, result.boxes)
    assert max(bxs) <= cap


@settings(max_examples=60, deadline=None)
@given(image_classes, st.sampled_from([1.0, 1.5, 3.0]))
def test_max_ratio_is_met_or_the_report_says_why(classes: list[list[int]], ratio: float) -> None:
    images, boxes = frames(classes)
    result = balance(images, boxes, NAMES, [parse_strategy(f"max-ratio={ratio}")])
    step = result.report["steps"][0]
    imgs, _ = train_counts(result.images, result.boxes)
    if step["bound_met"]:
        assert min(imgs) > 0 and max(imgs) / min(imgs) <= ratio
    else:
        assert step["why_not"]


@settings(max_examples=60, deadline=None)
@given(image_classes)
def test_balancing_changes_only_train_and_dropped_images_take_their_boxes(classes: list[list[int]]) -> None:
    images, boxes = frames(classes)
    result = balance(images, boxes, NAMES, [parse_strategy("max-ratio=1"), parse_strategy("oversample")])
    before_val = images.loc[images["split"] == "val", "source_ref"].tolist()
    after = result.images
    assert after.loc[after["split"] == "val", "source_ref"].tolist() == before_val
    assert (after.loc[after["copy"] > 0, "split"] == "train").all()
    # every kept box still belongs to the same source image it came from
    src_of_box = dict(zip(boxes["box_id"], images["source_ref"].to_numpy()[boxes["image"]], strict=True))
    kept = result.boxes
    assert all(
        src_of_box[b] == s
        for b, s in zip(kept["box_id"], after["source_ref"].to_numpy()[kept["image"]], strict=True)
    )
    # an image dropped from train has no boxes left anywhere
    gone = set(images["source_ref"]) - set(after["source_ref"])
    assert not gone & set(after["source_ref"].to_numpy()[kept["image"]])


def test_oversample_repeats_minority_images_in_train_up_to_the_target() -> None:
    images, boxes = frames([[0]] * 40 + [[1]] * 10 + [[2]] * 20, val_every=1000)
    result = balance(images, boxes, NAMES, [parse_strategy("oversample")])
    imgs, _ = train_counts(result.images, result.boxes)
    assert imgs == [40, 40, 40]
    assert result.images["copy"].max() <= MAX_REPEAT


def test_oversample_stops_at_the_repeat_limit_and_says_so() -> None:
    images, boxes = frames([[0]] * 200 + [[1]] * 2, val_every=1000)
    step = balance(images, boxes, NAMES[:2], [parse_strategy("oversample")]).report["steps"][0]
    assert not step["bound_met"] and "at most" in step["why_not"]


def test_class_weights_are_inverse_frequency_and_change_nothing() -> None:
    images, boxes = frames([[0, 0, 0]] * 10 + [[1]] * 10, val_every=1000)
    result = balance(images, boxes, NAMES[:2], [parse_strategy("class-weights")])
    weights = result.report["class_weights"]
    assert len(result.images) == len(images) and weights["b"] == pytest.approx(3 * weights["a"], rel=1e-3)


def test_ratio_that_cannot_hold_names_the_class_without_train_images() -> None:
    images, boxes = frames([[0]] * 30 + [[1]] * 10 + [[2]], val_every=41)  # the only 'c' image is in val
    step = balance(images, boxes, NAMES, [parse_strategy("max-ratio=2")]).report["steps"][0]
    assert not step["bound_met"] and "c have no train images" in step["why_not"]


@pytest.mark.parametrize(
    "spec", ["drop-screwdrivers=3", "cap-images", "cap-images=0", "max-ratio=x", "class-weights=2"]
)
def test_bad_strategy_specs_are_refused_with_the_spec(spec: str) -> None:
    with pytest.raises(DataprepError, match="--balance"):
        parse_strategy(spec)
