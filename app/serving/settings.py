"""Serving settings, parsed once from the environment (``SERVING_*``; the port also from SageMaker's variable).

SageMaker passes the model's ``Environment`` map to the container, so every knob here can be set per endpoint from
the stage config (``EndpointSettings.environment``) without rebuilding the image.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.contracts.invocation import DEFAULT_MAX_BODY_BYTES, InferenceOptions

DEFAULT_MODEL_DIR = Path("/opt/ml/model")
DEFAULT_PORT = 8080


def cpu_count() -> int:
    """CPUs this process may run on (honours taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class ServingSettings(BaseSettings):
    """Every serving knob. Names are the environment variables without the ``SERVING_`` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="SERVING_", extra="ignore", frozen=True, populate_by_name=True
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
    workers: int = Field(
        1, ge=1, le=64, description="server processes, each with its own ONNX Runtime session"
    )
    threads: int = Field(
        2, ge=1, le=64, description="inference threads per worker (requests run concurrently)"
    )
    intra_op_threads: int = Field(
        0, ge=0, le=256, description="ONNX Runtime threads per run; 0 = CPUs / workers"
    )
    parallel_runs: int = Field(
        0,
        ge=0,
        le=64,
        description="ONNX Runtime runs at once per worker; 0 = what the cores hold without oversubscribing: "
        "CPUs / (workers x ONNX Runtime threads), at least 1 (other requests decode and postprocess meanwhile)",
    )
    max_queue: int = Field(
        16, ge=1, le=10_000, description="admitted requests per worker (running + waiting)"
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
