"""Raw YOLO output -> detections in original pixels: confidence filter, class-wise NMS (numpy), max_det.

Same rules as ultralytics' ``non_max_suppression`` with its predict defaults (not class-agnostic, one label per
box, ``score > conf``, suppress when ``IoU > iou``), so served results agree with ``YOLO.predict`` on the same
input. Output layout: app.contracts.artifact (``[1, 4 + nc, anchors]``, cx cy w h in input pixels, then scores).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.contracts.invocation import InferenceOptions
from app.serving.images import Letterboxed

MAX_NMS = 30_000  # candidates kept before NMS (ultralytics' max_nms)
_CLASS_OFFSET = (
    7680.0  # ultralytics' max_wh: shifts each class to its own region so one NMS pass is class-wise
)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int) -> np.ndarray:
    """Greedy NMS on xyxy boxes; indices of kept boxes, best first, at most ``limit``."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.intp)


def detections(
    output: np.ndarray, image: Letterboxed, options: InferenceOptions, class_names: list[str]
) -> list[dict[str, Any]]:
    """One image's raw output [1, 4 + nc, anchors] -> contract detections (best first)."""
    pred = output[0]
    scores_all = pred[4:]
    class_ids = scores_all.argmax(axis=0)
    scores = np.take_along_axis(scores_all, class_ids[None], axis=0)[0]
    candidates = np.flatnonzero(scores > options.conf)
    if candidates.size > MAX_NMS:
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")[:MAX_NMS]]
    if candidates.size == 0:
        return []
    cx, cy, w, h = pred[:4, candidates]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    cls = class_ids[candidates]
    conf = scores[candidates]
    keep = nms(xyxy + (cls * _CLASS_OFFSET)[:, None], conf, options.iou, options.max_det)
    boxes = image.to_original(xyxy[keep].astype(np.float64)).round(2).tolist()
    return [
        {
            "label": class_names[c],
            "class_id": c,
            "confidence": round(s, 4),
            "box": {"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3]},
        }
        for c, s, b in zip(cls[keep].tolist(), conf[keep].tolist(), boxes, strict=True)
    ]
