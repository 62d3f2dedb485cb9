"""containers/serve: pinned requirements without torch, the SageMaker port label, exec-form entrypoint, and a build
context allow-list that matches what the Dockerfile copies and what infra stages. Runtime: < 1 s."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.constructs.images import BUILD_CONTEXT
from infra.paths import REPO_ROOT
from tests.fixtures.containers import requirement_pins, unadmitted_copy_sources

SERVE_DIR = REPO_ROOT / "containers" / "serve"
DOCKERFILE = (SERVE_DIR / "Dockerfile").read_text()


def _pins(path: Path) -> dict[str, str]:
    lines = [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    pins = requirement_pins(lines)
    assert len(pins) == len(lines), f"{path}: every requirement must be pinned with =="
    return pins


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-gpu.txt"])
def test_requirements_are_pinned_and_free_of_torch(name: str) -> None:
    pins = _pins(SERVE_DIR / name)
    assert not {"torch", "torchvision", "ultralytics", "opencv-python"} & set(pins)


def test_gpu_requirements_differ_only_by_onnxruntime_gpu() -> None:
    """onnxruntime-gpu is ONNX Runtime's CUDA 12 build, which trails the CPU release (same major); all else equal."""
    cpu, gpu = _pins(SERVE_DIR / "requirements.txt"), _pins(SERVE_DIR / "requirements-gpu.txt")
    ort_gpu, ort_cpu = gpu.pop("onnxruntime-gpu"), cpu.pop("onnxruntime")
    as_tuple = lambda v: tuple(int(p) for p in v.split("."))  # noqa: E731
    assert as_tuple(ort_gpu)[0] == as_tuple(ort_cpu)[0] and as_tuple(ort_gpu) <= as_tuple(ort_cpu)
    assert gpu == cpu


def test_gpu_image_cuda_is_the_one_declared_in_the_contract() -> None:
    from app.contracts.cuda import IMAGE_CUDA

    assert re.search(rf"^ARG CUDA_VERSION={re.escape(IMAGE_CUDA['serve'])}$", DOCKERFILE, re.M)
    assert re.search(r"^FROM nvidia/cuda:\$\{CUDA_VERSION\}-\S+ AS gpu$", DOCKERFILE, re.M)


def test_dockerfile_has_the_sagemaker_port_label_and_exec_form_entrypoint() -> None:
    assert "LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in DOCKERFILE
    assert re.search(r'^ENTRYPOINT \["[^"]+"\]$', DOCKERFILE, re.M)
    assert re.search(r"^USER (?!root|0\b)", DOCKERFILE, re.M)


def test_build_context_allow_list_matches_copies_and_infra() -> None:
    ignore = (SERVE_DIR / "Dockerfile.dockerignore").read_text().splitlines()
    assert {line[1:] for line in ignore if line.startswith("!")} == set(BUILD_CONTEXT["serve"])
    assert unadmitted_copy_sources(SERVE_DIR) == []
