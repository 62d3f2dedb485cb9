"""INT8 as a product of training: quantize model.onnx, evaluate both precisions, ship int8 only on evidence.

ONNX Runtime static quantization (QDQ, per-channel weights) with percentile calibration, collected in strided chunks
(ORT's ``CalibStridedMinMax`` loop, which serves any calibrator: the reader hands ORT one range of images at a time
and the histograms are merged chunk by chunk). Unchunked, ORT keeps every calibration image's activations until the
end - ~443 MiB per image for YOLOv8s at 640, so the default 64 images OOM-killed finished jobs on a 16 GiB instance;
chunked, memory holds one chunk's activations whatever the image count. Percentile, not min/max: on the serving
bench's teacher set (bench/bench_serving.py) min/max ranges cost 9.47 points of mAP50-95, percentile 99.99 none
(int8 2.27 points above fp32 there). The detection head stays in float
where ultralytics' own int8 exports keep it: its output convolutions (the last conv of each cv2/cv3 branch: box
distributions and class logits) and the decoding after them (DFL, anchors, strides, the final concat) - boxes in
pixels and scores in [0, 1] share one output tensor, and one int8 scale for both collapses every detection. The
branches' inner convolutions are quantized (~40% of the head's time).

Both models are evaluated by ultralytics' validator (app.training.evaluation) and the gate (app.training.int8_gate)
decides; a model that does not ship is deleted. The whole step runs in a child process (app.training.int8_step), so
a failure of any kind, memory included, costs the int8 model and never the fp32 one.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from app.contracts.artifact import INT8_ONNX, Int8Result
from app.contracts.dataset import IMAGE_SUFFIXES, VAL
from app.contracts.errors import ContractError
from app.contracts.metrics import MODEL_METRICS, QUALITY_KEY

# Node names of an ultralytics ONNX export: "/model.<module index>/<submodule>/...". The last module is the head.
_MODULE = re.compile(r"^/model\.(\d+)/")
CALIBRATION_METHOD = "percentile"
CALIBRATION_PERCENTILE = 99.99
# Images per calibration chunk: the calibrator holds this many images' activations (~443 MiB each for YOLOv8s at 640,
# 242 MiB for YOLOv8n) before merging them into its histograms, i.e. ~1.8 GiB for YOLOv8s - an eighth of the 16 GiB
# of ml.g5.xlarge, the smallest training instance in infra/stages.py, next to a training process that holds ~2 GiB
# once its epochs are done (measured). The image count no longer moves memory, only time. Peak RSS of the whole int8
# step at production defaults: bench/bench_training.py --peak-rss.
CALIBRATION_CHUNK = 4


class QuantizationError(ContractError):
    """The model cannot be quantized (not an ultralytics detection export, no calibration images, ...)."""


def _head(model: Any) -> tuple[list[str], list[str]]:
    """(decoding nodes, branch output convolutions) of the detection head, the last module of the export."""
    indices = [int(m.group(1)) for node in model.graph.node if (m := _MODULE.match(node.name))]
    if not indices:
        raise QuantizationError(
            "model.onnx has no '/model.<i>/' node names: not an ultralytics export, so its detection head "
            "cannot be found (quantizing the head collapses every detection)"
        )
    head = f"/model.{max(indices)}/"
    branches = re.compile(rf"^{re.escape(head)}cv[234]\.")
    in_head = [n for n in model.graph.node if n.name.startswith(head)]
    decoding = [n for n in in_head if not branches.match(n.name)]
    feeds_decoding = {i for n in decoding for i in n.input}
    outputs = [
        n.name
        for n in in_head
        if branches.match(n.name) and n.op_type == "Conv" and set(n.output) & feeds_decoding
    ]
    return [n.name for n in decoding], outputs


def float_nodes(model: Any) -> list[str]:
    """Nodes kept in float: the detection head's decoding (every node of the last module outside its convolution
    branches: cv2 = box distribution, cv3 = class scores, cv4 = extra heads of other tasks) and the branches' output
    convolutions, which feed it - as in ultralytics' own int8 exports. The branches' inner layers are quantized."""
    decoding, outputs = _head(model)
    return decoding + outputs


def output_convolutions(model: Any) -> list[str]:
    """The head branches' output convolutions (kept in float, see :func:`float_nodes`)."""
    return _head(model)[1]


def letterbox(image_bgr: np.ndarray, imgsz: int) -> np.ndarray:
    """The validator's preprocessing (ultralytics LetterBox to imgsz x imgsz, RGB, CHW, 0..1) as a 1-image batch."""
    from ultralytics.data.augment import LetterBox

    boxed: np.ndarray = LetterBox((imgsz, imgsz), auto=False)(image=image_bgr)  # type: ignore[assignment]
    chw = boxed[..., ::-1].transpose(2, 0, 1)
    return np.ascontiguousarray(chw[None], dtype=np.float32) / 255.0


def calibration_images(folder: Path, *, limit: int) -> list[Path]:
    """Up to ``limit`` images of ``folder``, spread evenly over its sorted listing (deterministic), as many as fill
    whole calibration chunks (ORT's strided calibration takes whole chunks only)."""
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise QuantizationError(f"{folder}: no images to calibrate the int8 model on")
    if len(images) > limit:
        step = len(images) / limit
        images = [images[int(i * step)] for i in range(limit)]
    if len(images) > CALIBRATION_CHUNK:
        images = images[: len(images) - len(images) % CALIBRATION_CHUNK]
    return images


class Calibration(CalibrationDataReader):  # type: ignore[misc]
    """ONNX Runtime CalibrationDataReader over image files, letterboxed like the validator does, read one range
    (chunk) at a time: ``set_range`` is what ORT's strided calibration calls; ``ranges`` records the chunks read."""

    def __init__(self, images: Sequence[Path], *, input_name: str, imgsz: int) -> None:
        self._images = list(images)
        self._input_name, self._imgsz = input_name, imgsz
        self.ranges: list[tuple[int, int]] = []
        self._pending: Iterator[Path] = iter(())

    def __len__(self) -> int:
        return len(self._images)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.ranges.append((start_index, end_index))
        self._pending = iter(self._images[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        import cv2

        path = next(self._pending, None)
        if path is None:
            return None
        image = cv2.imread(str(path))
        if image is None:
            raise QuantizationError(f"{path}: not a readable image (calibration)")
        return {self._input_name: letterbox(image, self._imgsz)}


@dataclass(frozen=True)
class Quantized:
    float_nodes: int
    chunks: list[tuple[int, int]]  # the image ranges calibration read, one chunk at a time


def quantize(
    fp32: Path, int8: Path, *, images: Sequence[Path], imgsz: int, input_name: str, float_head: bool = True
) -> Quantized:
    """Write the int8 QDQ model of ``fp32`` to ``int8``, calibrated chunk by chunk.

    ``float_head=False`` quantizes the head too: a broken model, there to prove the gate works."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    keep_float = float_nodes(onnx.load(str(fp32), load_external_data=False)) if float_head else []
    reader = Calibration(images, input_name=input_name, imgsz=imgsz)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Constant folding and shape inference first, as ONNX Runtime's quantization guide recommends.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={
                "CalibPercentile": CALIBRATION_PERCENTILE,
                "CalibStridedMinMax": min(
                    CALIBRATION_CHUNK, len(images)
                ),  # whole chunks: calibration_images()
            },
        )
    return Quantized(float_nodes=len(keep_float), chunks=reader.ranges)


def build_int8(
    *,
    model_dir: Path,
    fp32_name: str,
    input_name: str,
    imgsz: int,
    data_yaml: Path,
    class_names: Sequence[str],
    calibration_folder: Path,
    calibration_limit: int,
    max_drop: float,
    max_class_drop: float,
    min_val_images: int,
    float_head: bool = True,
    log: Any = print,
) -> Int8Result:
    """Quantize, evaluate both precisions, keep ``model.int8.onnx`` in ``model_dir`` only when the gate ships it."""
    from app.training.evaluation import evaluate
    from app.training.int8_gate import agreement, gate

    started = time.monotonic()
    int8_path = model_dir / INT8_ONNX
    images = calibration_images(calibration_folder, limit=calibration_limit)
    done = quantize(
        model_dir / fp32_name,
        int8_path,
        images=images,
        imgsz=imgsz,
        input_name=input_name,
        float_head=float_head,
    )
    log(f"[int8] calibrated on {len(images)} images in {len(done.chunks)} chunks of <= {CALIBRATION_CHUNK}")
    workdir = model_dir.parent
    fp32 = evaluate(
        model_dir / fp32_name, data_yaml=data_yaml, imgsz=imgsz, workdir=workdir, class_names=class_names
    )
    int8 = evaluate(int8_path, data_yaml=data_yaml, imgsz=imgsz, workdir=workdir, class_names=class_names)
    decision = gate(
        fp32.images,
        int8.images,
        class_names=class_names,
        max_drop=max_drop,
        max_class_drop=max_class_drop,
        min_images=min_val_images,
    )
    # label-free, on the calibration (train) images and up to as many val images
    compared = [*images, *_val_image_paths(data_yaml)[: len(images)]]
    evidence = {
        **decision.evidence,
        "agreement": agreement(model_dir / fp32_name, int8_path, compared, imgsz=imgsz),
    }
    if not decision.shipped:
        int8_path.unlink()
    result = Int8Result(
        file=INT8_ONNX if decision.shipped else None,
        shipped=decision.shipped,
        status=decision.status,  # type: ignore[arg-type]
        reason=decision.reason,
        max_map50_95_drop=max_drop,
        max_class_drop=max_class_drop,
        map50_95_drop=round(fp32.report[QUALITY_KEY] - int8.report[QUALITY_KEY], 6),
        fp32_onnx_metrics={k: fp32.report[k] for k in _metric_keys()},
        int8_onnx_metrics={k: int8.report[k] for k in _metric_keys()},
        evaluation={"fp32": fp32.report, "int8": int8.report},
        evidence=evidence,
        calibration_images=len(images),
        calibration_method=(
            f"{CALIBRATION_METHOD} {CALIBRATION_PERCENTILE}, {len(done.chunks)} strided chunks of <= {CALIBRATION_CHUNK}"
        ),
        calibration_chunks=done.chunks,
        float_nodes=done.float_nodes,
        seconds=round(time.monotonic() - started, 1),
    )
    log(
        f"[int8] {result.status}: fp32 {QUALITY_KEY} {fp32.report[QUALITY_KEY]:.4f}, int8 "
        f"{int8.report[QUALITY_KEY]:.4f} ({result.reason}; agreement {evidence['agreement']['agreement']}, "
        f"{done.float_nodes} head nodes in float, {result.seconds:.0f}s)"
    )
    return result


def _metric_keys() -> list[str]:
    return [m.key for m in MODEL_METRICS]


def _val_image_paths(data_yaml: Path) -> list[Path]:
    import yaml

    data = yaml.safe_load(data_yaml.read_text())
    folder = Path(data["path"]) / data[VAL]
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
