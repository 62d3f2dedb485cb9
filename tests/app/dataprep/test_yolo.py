"""YOLO geometry (round trip, bounds, 6 decimals) and collision-safe output names."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dataprep.yolo import format_label_lines, from_yolo, label_name, output_name, to_yolo


@st.composite
def pixel_boxes(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    width = draw(st.integers(1, 8000))
    height = draw(st.integers(1, 8000))
    x1 = draw(st.floats(0, width, allow_nan=False))
    x2 = draw(st.floats(x1, width, allow_nan=False))
    y1 = draw(st.floats(0, height, allow_nan=False))
    y2 = draw(st.floats(y1, height, allow_nan=False))
    return np.array([[x1, y1, x2, y2]]), width, height


@settings(max_examples=300, deadline=None)
@given(pixel_boxes())
def test_pixel_to_yolo_to_pixel_round_trips_within_one_pixel(case: tuple[np.ndarray, int, int]) -> None:
    xyxy, width, height = case
    xywhn = to_yolo(*xyxy.T, np.array([width]), np.array([height]))
    back = from_yolo(xywhn, np.array([width]), np.array([height]))
    assert np.abs(back - xyxy).max() <= 1.0


@settings(max_examples=300, deadline=None)
@given(pixel_boxes())
def test_every_yolo_coordinate_is_within_unit_range(case: tuple[np.ndarray, int, int]) -> None:
    xyxy, width, height = case
    xywhn = to_yolo(*xyxy.T, np.array([width]), np.array([height]))
    assert ((xywhn >= 0) & (xywhn <= 1)).all()


def test_label_lines_have_six_decimals() -> None:
    text = format_label_lines(np.array([2]), np.array([[0.5, 0.25, 0.1234567, 1.0]]))
    assert text == "2 0.500000 0.250000 0.123457 1.000000\n"


def test_same_basename_under_different_prefixes_gets_distinct_names() -> None:
    assert output_name("s3://b/a/x.jpg") != output_name("s3://b/c/x.jpg")


def test_same_stem_with_different_suffix_gets_distinct_labels() -> None:
    assert label_name(output_name("s3://b/x.jpg")) != label_name(output_name("s3://b/x.png"))


def test_dotted_name_keeps_a_single_suffix_for_the_label_swap() -> None:
    name = output_name("s3://b/a.b.JPG")
    assert name.endswith(".jpg") and name.count(".") == 1 and label_name(name).endswith(".txt")


def test_oversampled_copy_has_its_own_name() -> None:
    assert output_name("s3://b/x.jpg", copy=1) != output_name("s3://b/x.jpg")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="ab._-/ xJPG", min_size=1, max_size=12), min_size=2, max_size=6, unique=True)
)
def test_distinct_uris_never_share_a_name(keys: list[str]) -> None:
    names = [output_name(f"s3://bucket/{k}") for k in keys]
    assert len(set(names)) == len(names) and all("/" not in n for n in names)
