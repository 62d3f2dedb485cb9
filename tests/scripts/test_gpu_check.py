"""`make gpu-check` on a machine without a GPU says so and exits 0 without measuring; its serving and measuring
parts run for real against a CPU server (the GPU-only assertions need a GPU machine: see the README)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from app.contracts import cuda
from scripts import gpu_check


def test_without_a_gpu_it_says_so_and_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if cuda.driver_cuda() is not None:  # pragma: no cover - a GPU machine runs the real check instead
        pytest.skip("this machine has an NVIDIA driver")
    assert gpu_check.main(["--workdir", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out
    assert "gpu-check: skipped, no NVIDIA driver" in out and "nothing was trained or measured" in out
    assert not (tmp_path / "work").exists()


def test_bad_arguments_are_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--requests", "0"])
    assert exc.value.code == 2


def test_prepared_run_trains_one_epoch_on_cuda_0_as_a_gpu_instance(tmp_path: Path) -> None:
    opt_ml = gpu_check.prepare(tmp_path, images=12)
    config = opt_ml / "input" / "config"
    hyperparameters = json.loads((config / "hyperparameters.json").read_text())
    assert hyperparameters["epochs"] == "1" and hyperparameters["device"] == "0"
    resource = json.loads((config / "resourceconfig.json").read_text())
    assert resource["current_instance_type"] == gpu_check.GPU_INSTANCE
    assert (opt_ml / "input" / "data" / "dataset" / "dataset.json").is_file()
    assert gpu_check.held_out_image(opt_ml / "input" / "data" / "dataset")[:2] == b"\xff\xd8"  # a JPEG


def _jpeg() -> bytes:
    image = Image.new("RGB", (320, 240), (90, 120, 150))
    ImageDraw.Draw(image).ellipse((100, 60, 200, 160), fill=(230, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_measurements_run_against_a_real_server_and_read_its_providers(
    trained_artifact: Path, tmp_path: Path
) -> None:
    log, image = tmp_path / "serve-cpu.log", _jpeg()
    with gpu_check.server(trained_artifact, log, device="cpu") as url:
        assert gpu_check.providers_used(log) == ["CPUExecutionProvider"]
        assert gpu_check.p50_ms(url, image, 3) > 0
        assert gpu_check.throughput(url, image, batch=1, requests=2) > 0
        assert gpu_check.throughput(url, image, batch=gpu_check.largest_batch(), requests=1) > 0


def test_the_cuda_server_refuses_to_become_healthy_here(trained_artifact: Path, tmp_path: Path) -> None:
    """What gpu-check relies on: with SERVING_DEVICE=cuda and no CUDA, /ping never says 200."""
    if cuda.driver_cuda() is not None:  # pragma: no cover
        pytest.skip("this machine has an NVIDIA driver")
    log = tmp_path / "serve-cuda.log"
    with (
        pytest.raises(gpu_check.CheckFailed, match="never answered /ping 200"),
        gpu_check.server(trained_artifact, log, device="cuda", timeout=20),
    ):
        pass  # pragma: no cover
    assert "CUDAExecutionProvider" in log.read_text() and "not ready" in log.read_text()
