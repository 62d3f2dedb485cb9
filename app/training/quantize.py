"""INT8 as a product of training: quantize model.onnx, validate it like the fp32 model, ship it only if it holds up.

ONNX Runtime static quantization (QDQ, per-channel weights, percentile calibration on training images). The part of
the detection head that *decodes* boxes and scores (DFL, anchors, strides, the final concat of box coordinates and
class scores) stays in float: boxes in pixels and scores in [0, 1] share one output tensor, and one int8 scale for
both collapses every detection. The head's convolution branches (``cv2``/``cv3``) are quantized: on YOLOv8s that
part alone is ~40% of the int8 model's time when left in float, for no measurable accuracy gain.

The gate validates both ONNX models (fp32 and int8) with ultralytics' own validator on the dataset's val split -
the metric code that produced the fp32 model's metrics - and ships ``model.int8.onnx`` only when mAP50-95 drops by
at most ``max_drop`` (absolute, 0.01 = 1 point). A rejected model is deleted and reported in model.json, never
served.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.contracts.artifact import INT8_ONNX, Int8Result
from app.contracts.dataset import IMAGE_SUFFIXES
from app.contracts.errors import ContractError
from app.contracts.metrics import MODEL_METRICS, QUALITY_KEY, from_ultralytics

# Node names of an ultralytics ONNX export: "/model.<module index>/<submodule>/...". The last module is the head.
_MODULE = re.compile(r"^/model\.(\d+)/")
CALIBRATION_METHOD = "percentile"
CALIBRATION_PERCENTILE = 99.99


class QuantizationError(ContractError):
    """The model cannot be quantized (not an ultralytics detection export, no calibration images, ...)."""


def float_nodes(model: Any) -> list[str]:
    """Nodes kept in float: the detection head's decoding, i.e. every node of the last module except its
    convolution branches (cv2 = box distribution, cv3 = class scores, cv4 = extra heads of other tasks)."""
    indices = [int(m.group(1)) for node in model.graph.node if (m := _MODULE.match(node.name))]
    if not indices:
        raise QuantizationError(
            "model.onnx has no '/model.<i>/' node names: not an ultralytics export, so its detection head "
            "cannot be found (quantizing the head collapses every detection)"
        )
    head = f"/model.{max(indices)}/"
    branches = re.compile(rf"^{re.escape(head)}cv[234]\.")
    return [n.name for n in model.graph.node if n.name.startswith(head) and not branches.match(n.name)]


def letterbox(image_bgr: np.ndarray, imgsz: int) -> np.ndarray:
    """The validator's preprocessing (ultralytics LetterBox to imgsz x imgsz, RGB, CHW, 0..1) as a 1-image batch."""
    from ultralytics.data.augment import LetterBox

    boxed: np.ndarray = LetterBox((imgsz, imgsz), auto=False)(image=image_bgr)  # type: ignore[assignment]
    chw = boxed[..., ::-1].transpose(2, 0, 1)
    return np.ascontiguousarray(chw[None], dtype=np.float32) / 255.0


def calibration_images(folder: Path, *, limit: int) -> list[Path]:
    """Up to ``limit`` images of ``folder``, spread evenly over its sorted listing (deterministic)."""
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise QuantizationError(f"{folder}: no images to calibrate the int8 model on")
    if len(images) <= limit:
        return images
    step = len(images) / limit
    return [images[int(i * step)] for i in range(limit)]


class _Calibration:
    """ONNX Runtime CalibrationDataReader over image files, letterboxed like the validator does."""

    def __init__(self, images: Sequence[Path], *, input_name: str, imgsz: int) -> None:
        self._batches = self._read(images, input_name=input_name, imgsz=imgsz)

    @staticmethod
    def _read(images: Sequence[Path], *, input_name: str, imgsz: int) -> Iterator[dict[str, np.ndarray]]:
        import cv2

        for path in images:
            image = cv2.imread(str(path))
            if image is None:
                raise QuantizationError(f"{path}: not a readable image (calibration)")
            yield {input_name: letterbox(image, imgsz)}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(
    fp32: Path, int8: Path, *, images: Sequence[Path], imgsz: int, input_name: str, float_head: bool = True
) -> int:
    """Write the int8 QDQ model of ``fp32`` to ``int8``; return how many nodes were kept in float.

    ``float_head=False`` quantizes the head's decoding too: a broken model, there to prove the gate works."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    keep_float = float_nodes(onnx.load(str(fp32), load_external_data=False)) if float_head else []
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Constant folding and shape inference first, as ONNX Runtime's quantization guide recommends.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8),
            _Calibration(images, input_name=input_name, imgsz=imgsz),  # type: ignore[arg-type]
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": CALIBRATION_PERCENTILE},
        )
    return len(keep_float)


def validate_onnx(model: Path, *, data_yaml: Path, imgsz: int, workdir: Path) -> dict[str, float]:
    """Metrics of an ONNX model on the dataset's val split, computed by ultralytics' validator on the CPU."""
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        # The validator writes next to the model and into a project folder: keep both out of the artifact.
        local = Path(tmp) / model.name
        shutil.copyfile(model, local)
        validator = YOLO(str(local), task="detect")
        results = validator.val(
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
    # the fp32 model's final metrics (model.json), by the same names
    values = from_ultralytics(found, metrics=MODEL_METRICS, source=f"ultralytics' validator on {model.name}")
    return {key: round(value, 6) for key, value in values.items()}


def build_int8(
    *,
    model_dir: Path,
    fp32_name: str,
    input_name: str,
    imgsz: int,
    data_yaml: Path,
    calibration_folder: Path,
    calibration_limit: int,
    max_drop: float,
    float_head: bool = True,
    log: Any = print,
) -> Int8Result:
    """Quantize, validate both precisions, keep ``model.int8.onnx`` in ``model_dir`` only when it passes the gate."""
    started = time.monotonic()
    int8_path = model_dir / INT8_ONNX
    images = calibration_images(calibration_folder, limit=calibration_limit)
    kept_float = quantize(
        model_dir / fp32_name,
        int8_path,
        images=images,
        imgsz=imgsz,
        input_name=input_name,
        float_head=float_head,
    )
    fp32 = validate_onnx(model_dir / fp32_name, data_yaml=data_yaml, imgsz=imgsz, workdir=model_dir.parent)
    int8 = validate_onnx(int8_path, data_yaml=data_yaml, imgsz=imgsz, workdir=model_dir.parent)
    drop = round(fp32[QUALITY_KEY] - int8[QUALITY_KEY], 6)
    shipped = drop <= max_drop
    if shipped:
        reason = f"{QUALITY_KEY} drop {drop:.4f} <= {max_drop:.4f}"
    else:
        int8_path.unlink()
        reason = (
            f"rejected: {QUALITY_KEY} drop {drop:.4f} > {max_drop:.4f} (int8_max_map_drop); serving uses fp32"
        )
    result = Int8Result(
        file=INT8_ONNX if shipped else None,
        shipped=shipped,
        reason=reason,
        max_map50_95_drop=max_drop,
        map50_95_drop=drop,
        fp32_onnx_metrics=fp32,
        int8_onnx_metrics=int8,
        calibration_images=len(images),
        calibration_method=f"{CALIBRATION_METHOD} {CALIBRATION_PERCENTILE}",
        float_nodes=kept_float,
        seconds=round(time.monotonic() - started, 1),
    )
    log(
        f"[int8] {'shipped' if shipped else 'NOT shipped'}: fp32 {QUALITY_KEY} {fp32[QUALITY_KEY]:.4f}, "
        f"int8 {int8[QUALITY_KEY]:.4f} ({reason}; {len(images)} calibration images, {kept_float} head nodes "
        f"in float, {result.seconds:.0f}s)"
    )
    return result
