"""SIGTERM at each phase of the training entrypoint, as a process: exit 143 within seconds, checkpoint intact.

SageMaker sends SIGTERM on StopTrainingJob and spot interruptions, then SIGKILL. Before the training loop (imports,
dataset checks), during it, and after it (export, the ONNX test-run) the job must stop at once with exit code 143,
leave no model.json (so nothing half-written ships) and keep the last finished epoch in <opt_ml>/checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.training.callbacks import Terminated
from tests.fixtures.artifacts import (
    FAST_HYPERPARAMETERS,
    make_opt_ml,
    pretrained_checkpoint,
    terminate_training,
)

pytestmark = pytest.mark.slow
STOP_WITHIN_S = 15  # generous for 2 shared cores; SageMaker waits 120 s before SIGKILL


def _checkpoint_epoch(opt_ml: Path) -> int:
    from ultralytics.utils.patches import torch_load

    return int(torch_load(opt_ml / "checkpoints" / "last.pt", map_location="cpu")["epoch"]) + 1


def _opt_ml(tmp_path: Path, tiny_dataset: Path, epochs: int) -> Path:
    return make_opt_ml(
        tmp_path,
        dataset=tiny_dataset,
        pretrained=pretrained_checkpoint(),
        hyperparameters={**FAST_HYPERPARAMETERS, "epochs": str(epochs)},
    )


def test_terminated_is_not_an_exception_so_broad_handlers_cannot_swallow_it() -> None:
    assert not issubclass(Terminated, Exception) and issubclass(Terminated, BaseException)


def test_sigterm_before_the_training_loop_exits_143_at_once(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = _opt_ml(tmp_path, tiny_dataset, epochs=2)
    run = terminate_training(opt_ml, marker="[job]")
    assert run.returncode == 143, run.output[-3000:]
    assert run.stop_seconds < STOP_WITHIN_S and "[sigterm]" in run.output
    assert not (run.model_dir / "model.json").exists()
    assert not (opt_ml / "output" / "failure").exists()


def test_sigterm_mid_epoch_exits_143_with_the_last_epoch_checkpointed(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    opt_ml = _opt_ml(tmp_path, tiny_dataset, epochs=20)
    run = terminate_training(opt_ml, marker="[checkpoint] epoch 1 saved", delay_s=1.0)
    assert run.returncode == 143, run.output[-3000:]
    assert run.stop_seconds < STOP_WITHIN_S and "[sigterm]" in run.output
    assert _checkpoint_epoch(opt_ml) >= 1  # loadable: the copy is atomic and a copy in flight finishes first
    assert not (run.model_dir / "model.json").exists()


def test_sigterm_after_the_training_loop_exits_143_during_export(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = _opt_ml(tmp_path, tiny_dataset, epochs=2)
    run = terminate_training(opt_ml, marker="[artifact] writing")
    assert run.returncode == 143, run.output[-3000:]
    assert run.stop_seconds < STOP_WITHIN_S and "[sigterm]" in run.output
    assert _checkpoint_epoch(opt_ml) == 2  # the final epoch: a restart packages it without retraining
    assert not (run.model_dir / "model.json").exists()
