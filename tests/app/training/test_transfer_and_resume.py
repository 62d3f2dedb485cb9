"""Transfer learning from a previous artifact and spot-style resume, each with the real entrypoint as a process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from app.contracts.artifact import read_model_card
from app.contracts.dataset import read_dataset_info
from app.contracts.metrics import (
    PREFIX,
    is_epoch_line,
    parse_epoch_line,
)
from tests.fixtures.artifacts import (
    FAST_HYPERPARAMETERS,
    TrainingRun,
    checked_final_line,
    make_opt_ml,
    run_training,
    terminate_training,
)

pytestmark = pytest.mark.slow


def _epochs(output: str) -> list[int]:
    return [int(parse_epoch_line(line)["epoch"]) for line in output.splitlines() if is_epoch_line(line)]  # type: ignore[index]


def _blank_val_images(dataset: Path) -> None:
    """Make every later epoch score ~0, so the restored best (epoch 1) is never beaten after the restart."""
    for image in (dataset / "images" / "val").iterdir():
        with Image.open(image) as original:
            size, fmt = original.size, original.format
        Image.new("RGB", size, (114, 114, 114)).save(image, format=fmt)


def _same_weights(shipped: Path, checkpoint: Path) -> bool:
    from ultralytics.utils.patches import torch_load

    model = torch_load(shipped, map_location="cpu")["model"].float().state_dict()
    ema = torch_load(checkpoint, map_location="cpu")["ema"].float().state_dict()
    return model.keys() == ema.keys() and all(torch.equal(model[k], ema[k]) for k in model)


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


def test_sigterm_after_epoch_one_then_restart_resumes_at_epoch_two_and_ships_the_best_epoch(
    tmp_path: Path, tiny_dataset: Path, trained_artifact: Path
) -> None:
    # starting from the session's trained model, epoch 1 already detects (mAP > 0): a best worth keeping
    opt_ml = make_opt_ml(
        tmp_path,
        dataset=tiny_dataset,
        pretrained=trained_artifact / "model.pt",
        hyperparameters={**FAST_HYPERPARAMETERS, "epochs": "2"},
    )
    first = terminate_training(opt_ml, marker=f"{PREFIX} epoch=1/2", timeout=60)
    assert first.returncode == 143, first.output[-3000:]
    assert "[sigterm]" in first.output
    assert _epochs(first.output) == [1]
    assert (opt_ml / "checkpoints" / "last.pt").is_file()
    assert not (opt_ml / "model" / "model.json").exists()
    epoch_one = tmp_path / "epoch1-best.pt"
    shutil.copyfile(opt_ml / "checkpoints" / "best.pt", epoch_one)
    epoch_line = next(x for x in first.output.splitlines() if is_epoch_line(x))
    assert parse_epoch_line(epoch_line)["val:mAP50-95"] > 0  # type: ignore[index]

    # a restarted spot job is a fresh instance: only the checkpoints come back
    shutil.rmtree(opt_ml / "output")
    _blank_val_images(opt_ml / "input" / "data" / "dataset")
    second = run_training(opt_ml)
    assert second.returncode == 0, second.output[-3000:]
    assert "resuming from" in second.output
    assert _epochs(second.output) == [2]
    card = read_model_card(second.model_dir)
    assert card.training["resumed_from_epoch"] == 2
    history = pd.read_csv(second.model_dir / "results.csv")
    assert history["epoch"].tolist() == [1, 2]  # kept across the restart
    # epoch 2 scored ~0, so the best epoch is 1: its weights ship, not last.pt's
    assert (card.training["weights"], card.training["shipped_epoch"]) == ("best.pt", 1)
    assert _same_weights(second.model_dir / "model.pt", epoch_one)
    final = checked_final_line(second.output, second.model_dir)
    assert final["train:box_loss"] == pytest.approx(history.iloc[0]["train/box_loss"], rel=1e-5)


def test_restart_after_the_final_epoch_packages_the_checkpoint_without_training(
    tmp_path: Path, trained_run: TrainingRun, tiny_dataset: Path
) -> None:
    """A job killed after its last epoch (e.g. during export) restarts with a final-epoch checkpoint."""
    opt_ml = make_opt_ml(tmp_path, dataset=tiny_dataset)
    shutil.copytree(trained_run.opt_ml / "checkpoints", opt_ml / "checkpoints")
    run = run_training(opt_ml)
    assert run.returncode == 0, run.output[-3000:]
    assert "packaging it without retraining" in run.output
    assert _epochs(run.output) == []
    assert pd.read_csv(run.model_dir / "results.csv")["epoch"].tolist() == [1, 2]
    card = read_model_card(run.model_dir)
    assert card.training["weights"] == "best.pt"
    assert card.training["shipped_epoch"] == read_model_card(trained_run.model_dir).training["shipped_epoch"]
    checked_final_line(run.output, run.model_dir)
    assert read_model_card(run.model_dir).class_names == read_model_card(trained_run.model_dir).class_names
