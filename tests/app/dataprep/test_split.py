"""Deterministic, disjoint, stratified, grouped splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dataprep.errors import DataprepError
from app.dataprep.split import assign_splits


def frames(
    classes_per_image: list[list[int]], prefix_of=lambda i: f"p{i % 5}"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    images = pd.DataFrame(
        {"source_ref": [f"s3://b/{prefix_of(i)}/img{i}.jpg" for i in range(len(classes_per_image))]}
    )
    pairs = [(i, c) for i, cs in enumerate(classes_per_image) for c in cs]
    boxes = pd.DataFrame(pairs or np.zeros((0, 2), dtype=int), columns=["image", "cls"]).astype("int64")
    return images, boxes


image_classes = st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=2, max_size=60)


@settings(max_examples=80, deadline=None)
@given(image_classes, st.integers(0, 2**31), st.sampled_from([None, "prefix"]))
def test_each_image_gets_exactly_one_split(classes: list[list[int]], seed: int, group_by: str | None) -> None:
    images, boxes = frames(classes)
    splits = assign_splits(images, boxes, val_fraction=0.2, test_fraction=0.1, seed=seed, group_by=group_by)
    assert len(splits) == len(images) and set(splits) <= {"train", "val", "test"}


@settings(max_examples=50, deadline=None)
@given(image_classes, st.integers(0, 2**31))
def test_split_is_deterministic_and_independent_of_manifest_order(
    classes: list[list[int]], seed: int
) -> None:
    images, boxes = frames(classes)
    first = dict(
        zip(images["source_ref"], assign_splits(images, boxes, val_fraction=0.25, seed=seed), strict=True)
    )
    perm = np.random.default_rng(seed).permutation(len(images))
    inverse = np.argsort(perm)
    shuffled = images.iloc[perm].reset_index(drop=True)
    moved = boxes.assign(image=inverse[boxes["image"].to_numpy()])
    second = dict(
        zip(shuffled["source_ref"], assign_splits(shuffled, moved, val_fraction=0.25, seed=seed), strict=True)
    )
    assert first == second


@settings(max_examples=50, deadline=None)
@given(image_classes, st.integers(0, 2**31))
def test_group_key_keeps_a_group_in_one_split(classes: list[list[int]], seed: int) -> None:
    images, boxes = frames(classes)
    splits = assign_splits(images, boxes, val_fraction=0.3, seed=seed, group_by="prefix")
    groups = pd.DataFrame({"g": images["source_ref"].str.rsplit("/", n=1).str[0], "s": splits})
    assert (groups.groupby("g")["s"].nunique() == 1).all()


def test_different_seeds_give_different_splits() -> None:
    images, boxes = frames([[i % 3] for i in range(200)])
    a = assign_splits(images, boxes, val_fraction=0.2, seed=1)
    b = assign_splits(images, boxes, val_fraction=0.2, seed=2)
    assert (a != b).any()


def test_val_share_is_stratified_per_class() -> None:
    classes = [[0]] * 500 + [[1]] * 50 + [[2]] * 10 + [[]] * 40
    images, boxes = frames(classes)
    splits = assign_splits(images, boxes, val_fraction=0.2, seed=0)
    for cls, n in ((0, 500), (1, 50), (2, 10)):
        in_val = (splits[boxes.loc[boxes["cls"] == cls, "image"].to_numpy()] == "val").sum()
        assert in_val == round(n * 0.2)


def test_regex_group_key_needs_a_capture_group() -> None:
    images, boxes = frames([[0], [1]])
    with pytest.raises(DataprepError, match="capture group"):
        assign_splits(images, boxes, val_fraction=0.5, group_by="regex:p\\d")


def test_fractions_out_of_range_are_refused() -> None:
    images, boxes = frames([[0], [1]])
    with pytest.raises(DataprepError, match="val-fraction"):
        assign_splits(images, boxes, val_fraction=0.7, test_fraction=0.4)
