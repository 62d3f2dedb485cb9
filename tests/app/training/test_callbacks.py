"""Unit tests of the trainer callbacks' own logic: the overfitting guard and SIGTERM around a checkpoint copy."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.contracts.metrics import MetricNameError
from app.training.callbacks import EpochMonitor, SpotCheckpointer, Terminated, epoch_values


def _monitor(patience: int, history: list[tuple[float, float]]) -> EpochMonitor:
    return EpochMonitor(overfit_patience=patience, history=list(history))


def test_guard_fires_when_val_rises_while_train_falls_for_n_epochs() -> None:
    assert _monitor(2, [(5.0, 4.0), (4.0, 4.1), (3.0, 4.2)]).overfitting()


def test_guard_waits_for_n_consecutive_epochs() -> None:
    assert not _monitor(3, [(5.0, 4.0), (4.0, 4.1), (3.0, 4.2)]).overfitting()


def test_guard_ignores_val_rise_when_train_loss_also_rises() -> None:
    assert not _monitor(2, [(5.0, 4.0), (5.5, 4.1), (5.9, 4.2)]).overfitting()


def test_guard_resets_when_val_falls_in_between() -> None:
    assert not _monitor(2, [(5.0, 4.0), (4.0, 4.1), (3.0, 3.9), (2.0, 4.0)]).overfitting()


def test_guard_off_when_patience_is_zero() -> None:
    assert not _monitor(0, [(5.0, 4.0), (4.0, 5.0), (3.0, 6.0)]).overfitting()


def test_real_sigterm_raises_terminated_once_installed(tmp_path: Path) -> None:
    checkpointer = SpotCheckpointer(tmp_path)
    checkpointer.install()
    try:
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode boundary
    finally:
        checkpointer.uninstall()


def test_sigterm_inside_the_copy_section_is_deferred_to_its_end(tmp_path: Path) -> None:
    checkpointer = SpotCheckpointer(tmp_path)
    finished = False
    with pytest.raises(Terminated), checkpointer._critical():
        checkpointer.handle_sigterm(signal.SIGTERM, None)
        finished = True
    assert finished


def test_checkpoint_copy_replaces_last_pt_without_leftovers(tmp_path: Path) -> None:
    checkpointer = SpotCheckpointer(tmp_path / "checkpoints")
    for epoch, content in enumerate((b"epoch-1", b"epoch-2")):
        source = tmp_path / "last.pt"
        source.write_bytes(content)
        checkpointer.on_model_save(SimpleNamespace(last=source, best=tmp_path / "best.pt", epoch=epoch))
    assert checkpointer.checkpoint.read_bytes() == b"epoch-2"
    assert [p.name for p in checkpointer.checkpoint_dir.iterdir()] == ["last.pt"]


def test_best_pt_is_checkpointed_only_when_ultralytics_rewrote_it(tmp_path: Path) -> None:
    checkpointer = SpotCheckpointer(tmp_path / "checkpoints")
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    # epoch 2 does not beat epoch 1: ultralytics keeps best.pt
    for epoch, is_best in enumerate((True, False)):
        last.write_bytes(f"epoch-{epoch + 1}".encode())
        if is_best:
            best.write_bytes(last.read_bytes())
        checkpointer.on_model_save(SimpleNamespace(last=last, best=best, epoch=epoch))
    assert checkpointer.best_checkpoint.read_bytes() == b"epoch-1"
    assert checkpointer.checkpoint.read_bytes() == b"epoch-2"


def test_restore_best_puts_the_checkpointed_best_pt_in_the_trainers_weights(tmp_path: Path) -> None:
    checkpointer = SpotCheckpointer(tmp_path / "checkpoints")
    checkpointer.checkpoint_dir.mkdir()
    checkpointer.best_checkpoint.write_bytes(b"epoch-1")
    target = tmp_path / "run" / "weights" / "best.pt"
    assert checkpointer.restore_best(target) and target.read_bytes() == b"epoch-1"
    assert not SpotCheckpointer(tmp_path / "empty").restore_best(tmp_path / "other.pt")


_VAL = {"val/box_loss": 1.4, "val/cls_loss": 2.2, "val/dfl_loss": 1.35, "metrics/precision(B)": 0.7,
        "metrics/recall(B)": 0.6, "metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": 0.4}  # fmt: skip


class _Trainer:
    """The slice of ultralytics' trainer the monitor reads (its attributes, not our code)."""

    def __init__(self, epochs: int) -> None:
        self.epoch, self.epochs, self.stop = 0, epochs, False
        self.tloss: list[float] = []
        self.metrics: dict[str, float] = {}

    def label_loss_items(self, loss: list[float], prefix: str) -> dict[str, float]:
        return dict(
            zip((f"{prefix}/box_loss", f"{prefix}/cls_loss", f"{prefix}/dfl_loss"), loss, strict=True)
        )

    def end_epoch(self, monitor: EpochMonitor, epoch: int, train: float, val: float) -> None:
        self.epoch, self.tloss = epoch, [train, 0.0, 0.0]
        self.metrics = {**_VAL, "val/box_loss": val, "val/cls_loss": 0.0, "val/dfl_loss": 0.0}
        monitor.on_train_epoch_end(self)
        monitor.on_fit_epoch_end(self)


def test_one_metric_line_per_epoch_despite_final_eval_callback(capsys: pytest.CaptureFixture[str]) -> None:
    monitor, trainer = EpochMonitor(), _Trainer(epochs=2)
    trainer.end_epoch(monitor, 0, 3.0, 2.0)
    trainer.end_epoch(monitor, 1, 2.5, 1.9)
    trainer.epoch += 1  # ultralytics' final_eval fires on_fit_epoch_end again with epoch + 1
    monitor.on_fit_epoch_end(trainer)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["epoch=1/2", "epoch=2/2"]
    assert "mAP50=0.5 " in lines[0] and "precision=0.7 " in lines[0]


def test_guard_stops_the_trainer_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    monitor, trainer = EpochMonitor(overfit_patience=2), _Trainer(epochs=10)
    for epoch, (train, val) in enumerate([(3.0, 2.0), (2.5, 2.1), (2.0, 2.2)]):
        assert not trainer.stop
        trainer.end_epoch(monitor, epoch, train, val)
    assert trainer.stop and monitor.stopped_for_overfitting
    assert "[overfit-guard] stopping after epoch 3" in capsys.readouterr().out


def test_epoch_values_are_the_contracts_keys_of_ultralytics_numbers() -> None:
    trainer = _Trainer(epochs=1)
    trainer.tloss, trainer.metrics = [1.0, 2.0, 3.0], _VAL
    values = epoch_values(trainer)
    assert values == {"train_box_loss": 1.0, "train_cls_loss": 2.0, "train_dfl_loss": 3.0, "val_box_loss": 1.4,
                      "val_cls_loss": 2.2, "val_dfl_loss": 1.35, "precision": 0.7, "recall": 0.6, "mAP50": 0.5,
                      "mAP50-95": 0.4}  # fmt: skip


def test_epoch_values_refuse_a_renamed_ultralytics_metric_instead_of_printing_nan() -> None:
    renamed = {("metrics/mAP50-95(Box)" if k == "metrics/mAP50-95(B)" else k): v for k, v in _VAL.items()}
    trainer = _Trainer(epochs=3)
    trainer.epoch, trainer.tloss, trainer.metrics = 2, [1.0, 2.0, 3.0], renamed
    with pytest.raises(MetricNameError, match=re.escape("epoch 3: no ['metrics/mAP50-95(B)']")):
        epoch_values(trainer)
