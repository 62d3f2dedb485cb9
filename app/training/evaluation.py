"""The evaluation report of one ONNX model, computed once with ultralytics' validator, and the per-image numbers the
int8 gate's paired bootstrap resamples.

ultralytics' ``DetectionValidator`` is run as is (its matching, its AP code); a subclass only keeps each image's
statistics - the true-positive matrix at IoU 0.50:0.95, confidences, classes, and the box areas in original pixels -
which the validator otherwise concatenates and drops. From those, :func:`summarize` gives the report model.json
records per precision (val images, instances, mAP, per-class AP50 and AP50-95, small/medium/large slices) with
ultralytics' ``ap_per_class``, so the report's mAP50-95 is the validator's own.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.contracts.metrics import MODEL_METRICS, from_ultralytics

# COCO's box-size slices, in original-image pixels (area < 32^2 small, < 96^2 medium, else large):
# https://cocodataset.org/#detection-eval
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, float("inf")),
}
CONFUSION_CONF = 0.25  # ultralytics' own confusion matrix threshold (its predict default)


@dataclass(frozen=True)
class ImageStats:
    """One val image as the validator scored it."""

    name: str
    tp: np.ndarray  # bool [predictions, 10]: correct at IoU 0.50, 0.55, ..., 0.95
    conf: np.ndarray  # [predictions]
    pred_cls: np.ndarray  # [predictions]
    target_cls: np.ndarray  # [targets]
    pred_area: np.ndarray  # [predictions], original pixels
    target_area: np.ndarray  # [targets], original pixels


@dataclass(frozen=True)
class Evaluation:
    report: dict[str, Any]
    images: list[ImageStats]
    # ultralytics' detection confusion matrix [predicted, true] of the model's classes + background (last row and
    # column), at CONFUSION_CONF: what the champion comparison's report draws
    confusion: np.ndarray | None = None


def _area(xyxy: Any) -> np.ndarray:
    boxes = np.asarray(xyxy.cpu() if hasattr(xyxy, "cpu") else xyxy, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _validator_class() -> type:
    from ultralytics.models.yolo.detect import DetectionValidator

    class PerImageValidator(DetectionValidator):  # type: ignore[misc]
        """ultralytics' validator, keeping each image's statistics (see module docstring)."""

        def init_metrics(self, model: Any) -> None:
            from ultralytics.utils.metrics import ConfusionMatrix

            super().init_metrics(model)
            # ultralytics fills its own only when plotting (plots=False here: no files next to the model)
            self.confusion = ConfusionMatrix(names=model.names)
            self.per_image: list[ImageStats] = []
            self._areas: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
            update = self.metrics.update_stats

            def keep(stat: dict[str, Any]) -> None:
                update(stat)
                self.per_image.append(
                    ImageStats(
                        name=str(stat["im_name"]),
                        tp=np.asarray(stat["tp"], dtype=bool),
                        conf=np.asarray(stat["conf"], dtype=np.float64),
                        pred_cls=np.asarray(stat["pred_cls"], dtype=np.float64),
                        target_cls=np.asarray(stat["target_cls"], dtype=np.float64),
                        pred_area=self._areas[0],
                        target_area=self._areas[1],
                    )
                )

            self.metrics.update_stats = keep  # type: ignore[method-assign]

        def _process_batch(self, preds: dict[str, Any], batch: dict[str, Any]) -> dict[str, np.ndarray]:
            gain = float(batch["ratio_pad"][0][0])  # input pixels per original pixel
            self._areas = (_area(preds["bboxes"]) / gain**2, _area(batch["bboxes"]) / gain**2)
            self.confusion.process_batch(preds, batch, conf=CONFUSION_CONF)
            return super()._process_batch(preds, batch)  # type: ignore[no-any-return]

    return PerImageValidator


def average_precision(
    images: Sequence[ImageStats], *, size: tuple[float, float] | None = None
) -> dict[str, Any]:
    """ultralytics' ``ap_per_class`` over ``images`` (optionally only boxes whose area is in ``size``): mAP50,
    mAP50-95, and per class id {AP50, AP50-95, instances}. Classes without a target are not in the mean, as in
    ultralytics."""
    from ultralytics.utils.metrics import ap_per_class

    def pick(area: np.ndarray) -> np.ndarray:
        return np.ones(len(area), bool) if size is None else (area >= size[0]) & (area < size[1])

    keep_p = [pick(i.pred_area) for i in images]
    keep_t = [pick(i.target_area) for i in images]
    target_cls = np.concatenate(
        [i.target_cls[k] for i, k in zip(images, keep_t, strict=True)] or [np.zeros(0)]
    )
    if not len(target_cls):
        return {"instances": 0, "mAP50": float("nan"), "mAP50-95": float("nan"), "classes": {}}
    tp = np.concatenate([i.tp[k] for i, k in zip(images, keep_p, strict=True)] or [np.zeros((0, 10), bool)])
    conf = np.concatenate([i.conf[k] for i, k in zip(images, keep_p, strict=True)] or [np.zeros(0)])
    pred_cls = np.concatenate([i.pred_cls[k] for i, k in zip(images, keep_p, strict=True)] or [np.zeros(0)])
    result = ap_per_class(tp, conf, pred_cls, target_cls)
    ap, classes = result[5], result[6]
    counts = np.bincount(target_cls.astype(int))
    return {
        "instances": len(target_cls),
        "mAP50": float(ap[:, 0].mean()) if len(ap) else 0.0,
        "mAP50-95": float(ap.mean()) if len(ap) else 0.0,
        "classes": {
            int(c): {
                "instances": int(counts[int(c)]),
                "AP50": float(ap[j, 0]),
                "AP50-95": float(ap[j].mean()),
            }
            for j, c in enumerate(classes)
        },
    }


def summarize(
    images: Sequence[ImageStats], class_names: Sequence[str], metrics: dict[str, float]
) -> dict[str, Any]:
    """The report model.json records for one precision."""
    overall = average_precision(images)
    return {
        "images": len(images),
        "instances": overall["instances"],
        **{key: round(value, 6) for key, value in metrics.items()},
        "classes": {
            class_names[c]: {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
            for c, row in overall["classes"].items()
        },
        "sizes": {
            name: {
                "instances": (sliced := average_precision(images, size=bounds))["instances"],
                "mAP50": round(sliced["mAP50"], 6),
                "mAP50-95": round(sliced["mAP50-95"], 6),
            }
            for name, bounds in SIZES.items()
        },
    }


def evaluate(
    model: Path, *, data_yaml: Path, imgsz: int, workdir: Path, class_names: Sequence[str]
) -> Evaluation:
    """Validate an ONNX model on the dataset's val split with ultralytics' validator (CPU, batch 1)."""
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        # The validator writes next to the model and into a project folder: keep both out of the artifact.
        local = Path(tmp) / model.name
        shutil.copyfile(model, local)
        validator_class = _validator_class()
        yolo = YOLO(str(local), task="detect")
        captured: dict[str, Any] = {}
        yolo.add_callback(
            "on_val_end",
            lambda v: captured.update(images=list(v.per_image), confusion=v.confusion.matrix.copy()),
        )
        results = yolo.val(
            validator=validator_class,
            data=str(data_yaml),
            imgsz=imgsz,
            batch=1,
            device="cpu",
            plots=False,
            save_json=False,
            verbose=False,
            project=str(Path(tmp) / "val"),
            name="run",
            exist_ok=True,
        )
        found = results.results_dict
    metrics = from_ultralytics(found, metrics=MODEL_METRICS, source=f"ultralytics' validator on {model.name}")
    images = captured["images"]
    return Evaluation(
        report=summarize(images, class_names, metrics), images=images, confusion=captured["confusion"]
    )
