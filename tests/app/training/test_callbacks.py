"""Unit tests of the trainer callbacks' own logic: the overfitting guard and SIGTERM around a checkpoint copy."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.training.callbacks import EpochMonitor, SpotCheckpointer, Terminated


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
        checkpointer.on_model_save(SimpleNamespace(last=source, epoch=epoch))
    assert checkpointer.checkpoint.read_bytes() == b"epoch-2"
    assert [p.name for p in checkpointer.checkpoint_dir.iterdir()] == ["last.pt"]
