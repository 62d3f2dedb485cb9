"""Transfer learning from a previous artifact and spot-style resume, each with the real entrypoint as a process.

Runtime on 2 idle cores: transfer run ~13 s; SIGTERM + resume ~18 s (2 epochs in all); final-epoch restart ~5 s.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from app.contracts.artifact import read_model_card
from app.contracts.dataset import read_dataset_info
from app.contracts.metrics import PREFIX, parse_epoch_line
from tests.fixtures.artifacts import (
    FAST_HYPERPARAMETERS,
    REPO_ROOT,
    TrainingRun,
    make_opt_ml,
    run_training,
    training_command,
    training_env,
)

pytestmark = pytest.mark.slow


def _epochs(output: str) -> list[int]:
    return [int(parse_epoch_line(line)["epoch"]) for line in output.splitlines() if line.startswith(PREFIX)]  # type: ignore[index]


def test_previous_model_pt_transfers_to_a_dataset_with_fewer_classes(
    tmp_path: Path, trained_artifact: Path, tiny_dataset_two_classes: Path
) -> None:
    opt_ml = make_opt_ml(
        tmp_path,
        dataset=tiny_dataset_two_classes,
        pretrained=trained_artifact / "model.pt",
        hyperparameters={**FAST_HYPERPARAMETERS, "epochs": "1"},
    )
    run = run_training(opt_ml)
    assert run.returncode == 0, run.output[-3000:]
    assert "class head adapted 3 -> 2 classes" in run.output
    card = read_model_card(run.model_dir)
    assert card.class_names == read_dataset_info(tiny_dataset_two_classes).class_names
    transfer = card.training["transfer"]
    assert isinstance(transfer, dict)
    assert 0 < transfer["transferred"] < transfer["total"]
    assert all(".cv3." in name for name in transfer["not_transferred"])  # only the class branch starts fresh


def test_sigterm_after_epoch_one_then_restart_resumes_at_epoch_two(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    opt_ml = make_opt_ml(
        tmp_path, dataset=tiny_dataset, hyperparameters={**FAST_HYPERPARAMETERS, "epochs": "2"}
    )
    proc = subprocess.Popen(
        training_command(opt_ml), cwd=REPO_ROOT, env=training_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(f"{PREFIX} epoch=1/2"):
                proc.send_signal(signal.SIGTERM)
                break
        seen.extend(proc.stdout)
        returncode = proc.wait(timeout=60)
    finally:
        proc.kill()
    first = "".join(seen)
    assert returncode == 143, first[-3000:]
    assert "[sigterm]" in first
    assert _epochs(first) == [1]
    assert (opt_ml / "checkpoints" / "last.pt").is_file()
    assert not (opt_ml / "model" / "model.json").exists()

    shutil.rmtree(
        opt_ml / "output"
    )  # a restarted spot job is a fresh instance: only the checkpoints come back
    second = run_training(opt_ml)
    assert second.returncode == 0, second.output[-3000:]
    assert "resuming from" in second.output
    assert _epochs(second.output) == [2]
    assert read_model_card(second.model_dir).training["resumed_from_epoch"] == 2
    assert pd.read_csv(second.model_dir / "results.csv")["epoch"].tolist() == [
        1,
        2,
    ]  # history kept across restart


def test_restart_after_the_final_epoch_packages_the_checkpoint_without_training(
    tmp_path: Path, trained_run: TrainingRun, tiny_dataset: Path
) -> None:
    """A job killed after its last epoch (e.g. during export) restarts with a final-epoch checkpoint (~8 s)."""
    opt_ml = make_opt_ml(tmp_path, dataset=tiny_dataset)
    shutil.copytree(trained_run.opt_ml / "checkpoints", opt_ml / "checkpoints")
    run = run_training(opt_ml)
    assert run.returncode == 0, run.output[-3000:]
    assert "packaging it without retraining" in run.output
    assert _epochs(run.output) == []
    assert pd.read_csv(run.model_dir / "results.csv")["epoch"].tolist() == [1, 2]
    assert read_model_card(run.model_dir).class_names == read_model_card(trained_run.model_dir).class_names
