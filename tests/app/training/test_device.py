"""A GPU instance type with no CUDA device fails the job at once, with the driver/CUDA reason in the failure file,
instead of training on the CPU. This machine has no NVIDIA driver, which is exactly the case (nothing faked); the
driver's own answer (libcuda via ctypes) is faked at its boundary only for the version-mismatch wording."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from app.contracts import cuda
from app.training import device
from app.training.environment import INSTANCE_TYPE_ENV, TrainingEnvironment
from app.training.sagemaker import OptMl, TrainingConfig, read_config
from tests.fixtures.artifacts import FAST_HYPERPARAMETERS, make_opt_ml, run_training


def _config(tmp_path: Path, dataset: Path, instance_type: str | None) -> TrainingConfig:
    opt = make_opt_ml(tmp_path, dataset=dataset)
    resource = opt / "input" / "config" / "resourceconfig.json"
    if instance_type:
        resource.write_text(
            json.dumps({**json.loads(resource.read_text()), "current_instance_type": instance_type})
        )
    return read_config(OptMl(opt))


def test_local_run_without_an_instance_type_needs_no_gpu() -> None:
    assert "local run" in device.check(None, "")


def test_cpu_instance_trains_on_the_cpu() -> None:
    assert "has no NVIDIA GPU" in device.check("ml.c6i.xlarge", "")


def test_resourceconfig_names_the_instance_before_the_toolkit_variable(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    config = _config(tmp_path, tiny_dataset, "ml.g5.xlarge")
    assert device.instance_type(config, TrainingEnvironment(instance_type="ml.m5.large")) == "ml.g5.xlarge"


def test_toolkit_variable_names_the_instance_when_resourceconfig_does_not(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    config = _config(tmp_path, tiny_dataset, None)
    environment = TrainingEnvironment.read({INSTANCE_TYPE_ENV: "ml.m5.large"})
    assert device.instance_type(config, environment) == "ml.m5.large"
    assert device.instance_type(config, TrainingEnvironment.read({})) is None


def test_gpu_instance_without_a_cuda_device_is_refused() -> None:
    import torch

    if torch.cuda.is_available():  # pragma: no cover - a machine with a GPU
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(device.DeviceError, match=r"ml\.g5\.xlarge is a GPU instance.*sees no CUDA device"):
        device.check("ml.g5.xlarge", "")


def test_explicit_cpu_device_on_a_gpu_instance_is_respected_with_a_warning() -> None:
    assert "WARNING" in device.check("ml.g5.xlarge", "cpu")


def test_old_driver_is_named_as_a_driver_cuda_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    class OldDriver:  # libcuda.so.1 of driver 470: cuDriverGetVersion -> 11040
        def cuDriverGetVersion(self, out: Any) -> int:
            out._obj.value = 11040
            return 0

    monkeypatch.setattr(cuda.ctypes, "CDLL", lambda name: OldDriver())
    with pytest.raises(
        device.DeviceError, match=r"driver/CUDA mismatch.*supports CUDA 11\.4.*built on CUDA 1[23]"
    ):
        device.check("ml.g5.xlarge", "")


def test_entrypoint_fails_within_the_first_minute_with_the_reason_in_the_failure_file(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    # no device hyperparameter: '' = every GPU of the instance
    hyperparameters = {k: v for k, v in FAST_HYPERPARAMETERS.items() if k != "device"}
    opt_ml = make_opt_ml(tmp_path, dataset=tiny_dataset, hyperparameters=hyperparameters)
    resource = opt_ml / "input" / "config" / "resourceconfig.json"
    resource.write_text(
        json.dumps({**json.loads(resource.read_text()), "current_instance_type": "ml.g5.xlarge"})
    )
    started = time.monotonic()
    run = run_training(opt_ml, timeout=60)
    assert time.monotonic() - started < 60
    assert run.returncode == 1, run.output[-2000:]
    assert run.failure is not None and run.failure.startswith("ml.g5.xlarge is a GPU instance")
    assert "no NVIDIA driver is visible" in run.failure
    assert not (opt_ml / "model" / "model.json").exists()
