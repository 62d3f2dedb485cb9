"""Serving settings, parsed once from the environment (``SERVING_*``; the port also from SageMaker's variable).

SageMaker passes the model's ``Environment`` map to the container, so every knob here can be set per endpoint from
the stage config (``EndpointSettings.environment``) without rebuilding the image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.contracts import serving_environment
from app.contracts.invocation import DEFAULT_MAX_BODY_BYTES, InferenceOptions

DEFAULT_MODEL_DIR = Path("/opt/ml/model")
DEFAULT_PORT = 8080
# Memory guard on very large hosts: each worker holds its own session (YOLOv8s fp32: ~250 MB RSS per worker).
MAX_DEFAULT_WORKERS = 32


def cpu_count() -> int:
    """CPUs this process may run on (honours taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Layout:
    """Processes x inference threads per process x ONNX Runtime intra-op threads per run, and spinning."""

    workers: int
    threads: int
    intra_op_threads: int
    spinning: bool


def default_layout(vcpus: int, device: str) -> Layout:
    """The default worker layout for ``vcpus`` CPUs on ``device`` (``cpu`` or ``cuda``).

    CPU: one process per vCPU, each running single-threaded ONNX Runtime sessions. That is the machine's limit:
    measured on 2 vCPUs with YOLOv8s at 640x480, 2 processes x 1 thread gave ~12.2 img/s against ~11.4 for one
    2-thread process (issue 15), because a single-threaded run has no intra-op barrier to wait on. Two inference
    threads per process let the next request decode while the current one runs (runs take turns: run_slots = 1).
    Spinning stays off: a spinning idle ORT thread steals the core another process needs. Above
    MAX_DEFAULT_WORKERS vCPUs the extra cores become intra-op threads instead of more copies of the model.

    GPU: one process (one CUDA context, one copy of the model on the device); a few inference threads keep the
    GPU fed while the CPU decodes and postprocesses, and two runs can be in flight."""
    vcpus = max(1, vcpus)
    if device == "cuda":
        return Layout(
            workers=1, threads=max(2, min(4, vcpus)), intra_op_threads=max(1, vcpus // 2), spinning=False
        )
    workers = min(vcpus, MAX_DEFAULT_WORKERS)
    return Layout(workers=workers, threads=2, intra_op_threads=max(1, vcpus // workers), spinning=False)


def resolved_device(device: str) -> str:
    """``auto`` -> ``cuda`` when this onnxruntime build has the CUDA provider, else ``cpu``."""
    if device != "auto":
        return device
    import onnxruntime as ort  # here, not at import: ``serve --help`` and bad settings stay fast

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


class ServingSettings(BaseSettings):
    """Every serving knob. Names are the environment variables without the ``SERVING_`` prefix."""

    model_config = SettingsConfigDict(
        env_prefix=serving_environment.PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    model_dir: Path = Field(
        DEFAULT_MODEL_DIR, description="untarred model artifact (model.onnx + model.json)"
    )
    host: str = Field("0.0.0.0", description="0.0.0.0 in the container; tests bind 127.0.0.1")
    port: int = Field(
        DEFAULT_PORT,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("SAGEMAKER_BIND_TO_PORT", "SERVING_PORT"),
    )
    # workers, threads, intra_op_threads and spinning default to default_layout(CPUs, device); set any to override
    workers: int = Field(
        ge=1,
        le=64,
        description="server processes, each with its own ONNX Runtime session; default: one per vCPU",
    )
    threads: int = Field(ge=1, le=64, description="inference threads per worker (requests run concurrently)")
    intra_op_threads: int = Field(
        ge=0, le=256, description="ONNX Runtime threads per run; 0 = CPUs / workers; default: 1 on CPU"
    )
    spinning: bool = Field(description="ONNX Runtime's idle threads spin for work; default off")
    parallel_runs: int = Field(
        0,
        ge=0,
        le=64,
        description="ONNX Runtime runs at once per worker; 0 = what the cores hold without oversubscribing: "
        "CPUs / (workers x ONNX Runtime threads), at least 1 (other requests decode and postprocess meanwhile)",
    )
    max_queue: int = Field(
        128,
        ge=1,
        le=10_000,
        description="hard cap on admitted requests per worker (running + waiting), against memory blowup; "
        "below it, admission is by expected wait (service.py)",
    )
    admit_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="admit while the expected time to answer stays under this fraction of deadline_s",
    )
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    max_images: int = Field(16, ge=1, le=256, description="images per request")
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="decoded pixels per image (decompression bombs)"
    )
    deadline_s: float = Field(50.0, gt=0, le=59, description="per request; below SageMaker's 60 s timeout")
    graceful_timeout_s: int = Field(
        20, ge=1, le=24, description="SIGTERM: finish in-flight requests this long"
    )
    device: str = Field(
        "auto", pattern="^(auto|cpu|cuda)$", description="auto = CUDA when available, else CPU"
    )
    precision: str = Field(
        "fp32",
        pattern="^(fp32|int8)$",
        description="model.onnx (fp32) or model.int8.onnx (int8); no fallback",
    )
    warmup_runs: int = Field(1, ge=0, le=20, description="dummy inferences before /ping says ready")
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")
    conf: float = Field(InferenceOptions.model_fields["conf"].default, ge=0.0, le=1.0)
    iou: float = Field(InferenceOptions.model_fields["iou"].default, ge=0.0, le=1.0)
    max_det: int = Field(InferenceOptions.model_fields["max_det"].default, ge=1, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _default_layout(cls, data: Any) -> Any:
        """Fill the layout knobs nobody set from default_layout; an explicit SERVING_WORKERS without
        SERVING_INTRA_OP_THREADS keeps splitting the CPUs between the workers (intra_op_threads 0)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        layout = default_layout(cpu_count(), resolved_device(str(data.get("device", "auto"))))
        if data.get("workers") is None:
            data["workers"] = layout.workers
            data.setdefault("intra_op_threads", layout.intra_op_threads)
        data.setdefault("intra_op_threads", 0)
        data.setdefault("threads", layout.threads)
        data.setdefault("spinning", layout.spinning)
        return data

    @property
    def default_options(self) -> InferenceOptions:
        return InferenceOptions(conf=self.conf, iou=self.iou, max_det=self.max_det)

    @property
    def ort_threads(self) -> int:
        return self.intra_op_threads or max(1, cpu_count() // self.workers)

    @property
    def run_slots(self) -> int:
        """Session runs allowed at once per worker. With the defaults one run already uses every core, so runs
        take turns: two inferences of N threads each on N cores only thrash (throughput at concurrency 4 fell
        below concurrency 1), while decode and postprocess of the next request overlap the current run."""
        return self.parallel_runs or max(1, cpu_count() // (self.workers * self.ort_threads))
