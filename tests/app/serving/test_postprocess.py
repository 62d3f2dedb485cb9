"""Raw output -> detections: confidence filter, class-wise NMS, max_det, mapping; and agreement with ultralytics."""

from __future__ import annotations

import numpy as np
import pytest

from app.contracts.invocation import InferenceOptions
from app.serving import images, postprocess
from app.serving.images import Letterboxed
from app.serving.model import Detector

NAMES = ["a", "b"]
IDENTITY = Letterboxed(np.zeros((1, 3, 100, 100), np.float32), 100, 100, 0, 0, 1.0, 1.0)


def _raw(*boxes: tuple[float, float, float, float, int, float], anchors: int = 8) -> np.ndarray:
    """[1, 4 + 2, anchors] with the given (cx, cy, w, h, class, score) in the first anchors, zeros elsewhere."""
    out = np.zeros((1, 4 + len(NAMES), anchors), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


def test_overlapping_boxes_of_one_class_keep_the_best() -> None:
    raw = _raw((50, 50, 20, 20, 0, 0.6), (51, 50, 20, 20, 0, 0.9))
    found = postprocess.detections(raw, IDENTITY, InferenceOptions(conf=0.25, iou=0.5), NAMES)
    assert [(d["label"], d["confidence"]) for d in found] == [("a", 0.9)]


def test_overlapping_boxes_of_different_classes_are_both_kept() -> None:
    raw = _raw((50, 50, 20, 20, 0, 0.6), (51, 50, 20, 20, 1, 0.9))
    found = postprocess.detections(raw, IDENTITY, InferenceOptions(conf=0.25, iou=0.5), NAMES)
    assert [d["class_id"] for d in found] == [1, 0]


def test_confidence_filter_is_strictly_greater() -> None:
    raw = _raw((20, 20, 10, 10, 0, 0.5), (70, 70, 10, 10, 1, 0.51))
    found = postprocess.detections(raw, IDENTITY, InferenceOptions(conf=0.5), NAMES)
    assert [d["class_id"] for d in found] == [1]


def test_max_det_keeps_the_most_confident() -> None:
    raw = _raw(*[(10 + 12 * i, 50, 8, 8, 0, 0.3 + 0.1 * i) for i in range(6)])
    found = postprocess.detections(raw, IDENTITY, InferenceOptions(conf=0.1, max_det=2), NAMES)
    assert [d["confidence"] for d in found] == [0.8, 0.7]


def test_boxes_are_mapped_to_original_pixels() -> None:
    # 200x100 image letterboxed into 100x100: scale 0.5, 25 px of padding on top
    lb = Letterboxed(np.zeros((1, 3, 100, 100), np.float32), 200, 100, 0, 25, 2.0, 2.0)
    found = postprocess.detections(_raw((50, 50, 20, 10, 0, 0.9)), lb, InferenceOptions(), NAMES)
    assert found[0]["box"] == {"x1": 80.0, "y1": 40.0, "x2": 120.0, "y2": 60.0}


def test_no_candidate_gives_no_detection() -> None:
    assert postprocess.detections(_raw(), IDENTITY, InferenceOptions(conf=0.0), NAMES) == []


@pytest.mark.parametrize("conf,iou", [(0.001, 0.7), (0.05, 0.3)])
def test_same_detections_as_ultralytics_nms_on_the_trained_model(
    detector: Detector, photos: dict[str, bytes], conf: float, iou: float
) -> None:
    """Our numpy NMS + mapping vs ultralytics' own non_max_suppression + scale_boxes on the same raw output."""
    torch = pytest.importorskip("torch")
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    lb = images.load(photos["bus.jpg"], imgsz=detector.imgsz, max_pixels=50_000_000)
    raw = detector.infer(lb)
    ours = postprocess.detections(
        raw, lb, InferenceOptions(conf=conf, iou=iou, max_det=100), detector.class_names
    )
    theirs = non_max_suppression(torch.from_numpy(raw), conf_thres=conf, iou_thres=iou, max_det=100)[0]
    theirs[:, :4] = scale_boxes((detector.imgsz, detector.imgsz), theirs[:, :4], (lb.height, lb.width))
    assert len(ours) == len(theirs) > 0
    got = np.array([[d["box"][k] for k in ("x1", "y1", "x2", "y2")] for d in ours])
    np.testing.assert_allclose(got, theirs[:, :4].numpy(), atol=1.0)
    assert [d["class_id"] for d in ours] == theirs[:, 5].int().tolist()
