"""The model artifact as a ready-to-run detector: checks ``model.onnx`` against ``model.json``, opens an ONNX
Runtime session (CUDA execution provider when present, CPU otherwise) and runs one letterboxed image through it.
With ``SERVING_DEVICE=cuda`` (GPU endpoints) a session that ONNX Runtime quietly put on the CPU is marked
(``device_problem``) and the service never reports ready.

An artifact that cannot be served (missing files, a graph that disagrees with its card) raises ArtifactError with
the file and what was expected, so the container fails at startup instead of answering 500s.
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from app.contracts import cuda
from app.contracts.artifact import MODEL_JSON, PRECISION_FILES, ArtifactError, ModelCard, read_model_card
from app.contracts.invocation import InferenceOptions
from app.serving import postprocess
from app.serving.images import Letterboxed

log = logging.getLogger("app.serving.model")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_NO_GATE = contextlib.nullcontext()  # reusable: runs are not bounded unless the caller passes a semaphore
DEFAULT_STRIDE = 32  # largest YOLO detection stride; ultralytics also writes it to the ONNX metadata


def choose_providers(device: str) -> list[str]:
    """``auto``: CUDA when this onnxruntime build has it; ``cuda`` insists (``cuda_problem`` checks the session);
    ``cpu`` never uses it."""
    if device != "cpu" and CUDA in ort.get_available_providers():
        return [CUDA, CPU]
    return [CPU]


# cuDNN's default EXHAUSTIVE algorithm search benchmarks every convolution again for each new input shape: with a
# dynamic graph each new canvas (640x480, 480x640, ...) stalls its first request. HEURISTIC picks from cuDNN's own
# ranking without benchmarking. ONNX Runtime's CUDA provider options (cudnn_conv_algo_search):
# https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html
CUDA_OPTIONS: dict[str, str] = {"cudnn_conv_algo_search": "HEURISTIC"}


def with_options(providers: list[str]) -> list[str | tuple[str, dict[str, str]]]:
    """``providers`` as InferenceSession takes them, the CUDA provider with CUDA_OPTIONS."""
    return [(name, CUDA_OPTIONS) if name == CUDA else name for name in providers]


def cuda_problem(device: str, used: list[str]) -> str | None:
    """With SERVING_DEVICE=cuda, why the session does not run on CUDA (None when it does, or when not asked).

    ONNX Runtime falls back to the CPU, with only a warning, when the CUDA provider cannot load (driver too old,
    missing CUDA/cuDNN library): ``used`` is what the session actually runs with (``session.get_providers()``)."""
    if device != "cuda" or (used and used[0] == CUDA):
        return None
    available = ort.get_available_providers()
    if CUDA not in available:
        why = f"this onnxruntime build has no CUDA provider (it has {available}); the GPU image installs onnxruntime-gpu"
    else:
        why = cuda.explain_no_gpu(driver=cuda.driver_cuda(), needed=cuda.running_image_cuda())
    return f"SERVING_DEVICE=cuda but ONNX Runtime runs the model with {used}: {CUDA} failed to load: {why}"


@dataclass
class Detector:
    """An ONNX Runtime session plus the card that says how to feed it and name its classes."""

    session: ort.InferenceSession
    card: ModelCard
    path: Path
    providers: list[str] = field(default_factory=list)
    device_problem: str | None = None  # SERVING_DEVICE=cuda, yet not on CUDA: never report ready (service.py)

    @property
    def imgsz(self) -> int:
        return self.card.imgsz

    @property
    def class_names(self) -> list[str]:
        return self.card.class_names

    @property
    def stride(self) -> int | None:
        """None for a fixed imgsz x imgsz input; the model's stride when the graph takes any height/width
        (exported with ``dynamic=True``): then images are letterboxed to the smallest stride multiple."""
        shape = next(i.shape for i in self.session.get_inputs() if i.name == self.card.export.input_name)
        if all(isinstance(d, int) for d in shape[2:]):
            return None
        return int(self.session.get_modelmeta().custom_metadata_map.get("stride", DEFAULT_STRIDE))

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        device: str = "auto",
        threads: int = 0,
        precision: str = "fp32",
        spinning: bool = False,
    ) -> Detector:
        """Open and check an artifact folder; raise ArtifactError naming the file and the expectation.

        ``precision`` picks the graph (model.onnx or model.int8.onnx); asking for one the artifact does not
        ship is an error, never a silent fallback to another precision."""
        if not model_dir.is_dir():
            raise ArtifactError(f"{model_dir}: not a directory; expected the untarred model artifact")
        card = read_model_card(model_dir)
        if precision not in card.precisions():
            why = card.int8.reason if card.int8 is not None else "training did not quantize this model"
            raise ArtifactError(
                f"{model_dir / MODEL_JSON}: SERVING_PRECISION={precision} but this artifact ships only "
                f"{card.precisions()} ({why}); serve it with SERVING_PRECISION=fp32 or retrain with int8=true"
            )
        path = model_dir / PRECISION_FILES[precision]
        if not path.is_file():
            raise ArtifactError(f"{path}: missing; expected the ONNX graph written by the training container")
        if card.export.nms_embedded:
            raise ArtifactError(
                f"{model_dir / 'model.json'}: export.nms_embedded is true; serving expects the raw "
                "layout (nms=False export) and applies NMS per request"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Off by default: idle ORT threads spinning for work steal CPU from the other requests' decode/postprocess
        # and from the other runs (settings.default_layout).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=with_options(choose_providers(device))
            )
        except Exception as exc:  # ORT's own error types; any of them means the file is unusable
            raise ArtifactError(
                f"{path}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})"
            ) from None
        used = session.get_providers()
        detector = cls(session, card, path, used, cuda_problem(device, used))
        detector._check_graph()
        log.info(
            "model loaded",
            extra={
                "fields": {
                    "model": card.name,
                    "version": card.version,
                    "precision": precision,
                    "providers": detector.providers,
                    "imgsz": card.imgsz,
                    "classes": len(card.class_names),
                }
            },
        )
        return detector

    def _check_graph(self) -> None:
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        export, nc, s = self.card.export, len(self.card.class_names), self.card.imgsz
        if export.input_name not in inputs:
            raise ArtifactError(
                f"{self.path}: no input '{export.input_name}' (model.json export.input_name); "
                f"the graph has {sorted(inputs)}"
            )
        if export.output_name not in outputs:
            raise ArtifactError(
                f"{self.path}: no output '{export.output_name}' (model.json export.output_name); "
                f"the graph has {sorted(outputs)}"
            )
        shape_in = inputs[export.input_name]
        if len(shape_in) != 4 or any(
            isinstance(d, int) and d != e for d, e in zip(shape_in, [1, 3, s, s], strict=False)
        ):
            raise ArtifactError(
                f"{self.path}: input '{export.input_name}' has shape {shape_in}; expected "
                f"[1, 3, {s}, {s}] for imgsz {s} in model.json"
            )
        shape_out = outputs[export.output_name]
        rows = shape_out[1] if len(shape_out) == 3 else None
        if not isinstance(rows, int) or rows != 4 + nc:
            raise ArtifactError(
                f"{self.path}: output '{export.output_name}' has shape {shape_out}, i.e. {rows} rows; model.json "
                f"lists {nc} classes {self.card.class_names}, so expected 4 + {nc} = {4 + nc} rows. The graph and "
                "model.json come from different models: re-export the artifact"
            )

    def infer(self, image: Letterboxed) -> np.ndarray:
        result = self.session.run([self.card.export.output_name], {self.card.export.input_name: image.tensor})
        return np.asarray(result[0])

    def predict(
        self,
        image: Letterboxed,
        options: InferenceOptions,
        gate: AbstractContextManager[Any] = _NO_GATE,
    ) -> dict[str, Any]:
        """One image -> one contract ``Prediction`` (as a plain dict, ready for JSON). ``gate`` bounds how many
        session runs overlap (the caller's semaphore); decode and postprocess stay outside it."""
        with gate:
            output = self.infer(image)
        found = postprocess.detections(output, image, options, self.class_names)
        return {"image": {"width": image.width, "height": image.height}, "detections": found}

    def warmup(self, runs: int) -> None:
        """First runs allocate memory (and pick CUDA kernels): do them before /ping says ready."""
        s = self.imgsz
        blank = Letterboxed(np.full((1, 3, s, s), 114 / 255, dtype=np.float32), s, s, 0, 0, 1.0, 1.0)
        for _ in range(runs):
            self.infer(blank)
