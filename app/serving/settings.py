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
# CPU: single-thread runs at once per process by default. One process serves up to this many vCPUs; the GIL bounds
# it: a request holds the GIL for ~3 ms (HTTP, JSON, numpy glue; perf on 2 vCPUs), so 4 int8 runs (~45 img/s on
# 4 vCPUs) keep it ~15 % busy, while 16 would saturate it.
MAX_RUNS_PER_WORKER = 4
# Inference threads per concurrent run: while one request runs, the next decodes.
THREADS_PER_RUN = 2


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

    CPU: single-threaded ONNX Runtime runs, one per vCPU, as many at once in one process as it has vCPUs (up to
    MAX_RUNS_PER_WORKER; more vCPUs, more processes). Single-threaded runs are the machine's limit: on 2 vCPUs
    with YOLOv8s at 640x480, two 1-thread runs gave ~12.2 img/s against ~11.4 for one 2-thread run (issue 15),
    because a single-threaded run has no intra-op barrier to wait on. They share a process rather than one
    process per vCPU with one run each: a keep-alive connection stays with the process that accepted it, and
    two connections often landed on the same one, which then ran them in turn while the other vCPU idled (2
    clients on 2 vCPUs, 10 rounds of fresh connections: 5 rounds on ~1.0 core at ~4.3 img/s; one process: every
    round on ~1.95 cores, ~8.5 img/s; saturated the same within noise; the bench's "spread" rows).
    THREADS_PER_RUN inference threads per run let the next request decode while one runs. Spinning stays off: a
    spinning idle ORT thread steals the core another run needs.

    GPU: one process (one CUDA context, one copy of the model on the device); a few inference threads keep the
    GPU fed while the CPU decodes and postprocesses, and two runs can be in flight."""
    vcpus = max(1, vcpus)
    if device == "cuda":
        return Layout(
            workers=1, threads=max(2, min(4, vcpus)), intra_op_threads=max(1, vcpus // 2), spinning=False
        )
    workers = min(-(-vcpus // MAX_RUNS_PER_WORKER), MAX_DEFAULT_WORKERS)
    runs = -(-vcpus // workers)
    return Layout(workers=workers, threads=THREADS_PER_RUN * runs, intra_op_threads=1, spinning=False)


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
        description="server processes, each with its own ONNX Runtime session; default on CPU: one per "
        "MAX_RUNS_PER_WORKER (4) vCPUs, on a GPU: one",
    )
    threads: int = Field(
        ge=1,
        le=64,
        description="inference threads per worker (requests run concurrently); default: 2 per run slot",
    )
    intra_op_threads: int = Field(
        ge=0, le=256, description="ONNX Runtime threads per run; 0 = CPUs / workers; default: 1 on CPU"
    )
    spinning: bool = Field(description="ONNX Runtime's idle threads spin for work; default off")
    parallel_runs: int = Field(
        0,
        ge=0,
        le=64,
        description="ONNX Runtime runs at once per worker; 0 = the worker's share of the cores in runs: "
        "(CPUs / workers) / ONNX Runtime threads, at least 1 (other requests decode and postprocess meanwhile)",
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
            data.setdefault("threads", layout.threads)
        data.setdefault("intra_op_threads", 0)
        data.setdefault("threads", THREADS_PER_RUN)
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
        """Session runs allowed at once per worker: the worker's share of the cores, in runs of ``ort_threads``
        (the default layout: one single-thread run per vCPU). When one run already uses every core, runs take
        turns: two inferences of N threads each on N cores only thrash (throughput at concurrency 4 fell below
        concurrency 1), while decode and postprocess of the next request overlap the current run."""
        return self.parallel_runs or max(1, -(-cpu_count() // self.workers) // self.ort_threads)
