"""SERVING_DEVICE=cuda never falls back silently: a session ONNX Runtime put on the CPU keeps /ping at 503 with one
log line naming the CUDA provider and why. ONNX Runtime's own device queries (available providers) and the
driver's (libcuda via ctypes) are faked at their boundary only where this CPU machine cannot produce the case."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import onnxruntime as ort
import pytest

from app.contracts import cuda
from app.serving import model
from app.serving.app import create_app
from app.serving.model import CPU, CUDA, Detector, cuda_problem
from app.serving.settings import ServingSettings


def test_no_problem_unless_cuda_is_insisted_on() -> None:
    assert cuda_problem("auto", [CPU]) is None
    assert cuda_problem("cpu", [CPU]) is None
    assert cuda_problem("cuda", [CUDA, CPU]) is None


def test_cuda_on_a_cpu_only_onnxruntime_names_the_provider_and_the_build(trained_artifact: Path) -> None:
    if CUDA in ort.get_available_providers():  # pragma: no cover - a GPU build of onnxruntime
        pytest.skip("this onnxruntime has the CUDA provider")
    detector = Detector.load(trained_artifact, device="cuda", threads=1)
    assert detector.providers == [CPU]
    assert detector.device_problem is not None
    assert "SERVING_DEVICE=cuda" in detector.device_problem
    assert f"{CUDA} failed to load" in detector.device_problem
    assert "no CUDA provider" in detector.device_problem


class _FakeLibcuda:
    """libcuda.so.1 as ctypes sees it: cuDriverGetVersion writes the driver's CUDA version (e.g. 12020)."""

    def __init__(self, version: int) -> None:
        self.version = version

    def cuDriverGetVersion(self, out: Any) -> int:
        out._obj.value = self.version
        return 0


def test_fallback_with_an_old_driver_names_the_driver_cuda_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.ort, "get_available_providers", lambda: [CUDA, CPU])  # a GPU build
    monkeypatch.setattr(cuda.ctypes, "CDLL", lambda name: _FakeLibcuda(11040))  # driver 470: CUDA 11.4
    monkeypatch.setenv("CUDA_VERSION", "12.4.1")  # what the nvidia/cuda base image sets
    problem = cuda_problem("cuda", [CPU])
    assert problem is not None
    assert "driver/CUDA mismatch" in problem and "CUDA 11.4" in problem and "CUDA 12.4" in problem


def test_fallback_without_a_driver_says_no_driver_is_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str) -> Any:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(model.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(cuda.ctypes, "CDLL", no_library)
    problem = cuda_problem("cuda", [CPU])
    assert problem is not None and "no NVIDIA driver is visible" in problem


def test_driver_query_reads_the_cuda_version_from_libcuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda.ctypes, "CDLL", lambda name: _FakeLibcuda(12040))
    assert str(cuda.driver_cuda()) == "12.4"


def test_server_with_a_cpu_fallback_never_becomes_healthy(
    trained_artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    detector = Detector.load(trained_artifact, device="cpu", threads=1)
    detector.device_problem = cuda_problem(
        "cuda", detector.providers
    )  # what Detector.load(device="cuda") sets
    assert detector.device_problem
    app = create_app(detector, ServingSettings(device="cuda"))

    async def scenario() -> httpx.Response:
        async with app.router.lifespan_context(app):  # the real start-up: warm-up would make it ready
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
                return await client.get("/ping")

    with caplog.at_level(logging.ERROR, logger="app.serving.service"):
        ping = asyncio.run(scenario())
    assert ping.status_code == 503 and ping.json()["error"]["code"] == "not_ready"
    lines = [r for r in caplog.records if r.name == "app.serving.service" and r.levelno == logging.ERROR]
    assert len(lines) == 1
    fields = lines[0].__dict__["fields"]
    assert fields["provider"] == CUDA and fields["reason"] == detector.device_problem


def test_cuda_sessions_use_heuristic_cudnn_algorithm_search() -> None:
    """EXHAUSTIVE (ORT's default) re-benchmarks every convolution on each new dynamic canvas shape."""
    from app.serving.model import CPU, CUDA, with_options

    assert with_options([CUDA, CPU]) == [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU]
    assert with_options([CPU]) == [CPU]
