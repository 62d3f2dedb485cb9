"""ultralytics trainer callbacks: the per-epoch metric line, the overfitting guard, spot checkpoints, SIGTERM.

The final metric line (the shipped model's) is printed by app.training.run after training, not here: ultralytics'
extra on_fit_epoch_end after final_eval is skipped so there is exactly one ``[metrics] epoch=`` line per epoch.

They are registered on the trainer instance, so ultralytics pickles them into its DDP workers too; each acts on rank
0 only (the rank that validates and saves), and a stop decided there is broadcast to the other ranks by ultralytics.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from app.contracts.metrics import TRAIN_LOSSES, VAL_LOSSES, format_epoch_line, from_ultralytics

CHECKPOINT_NAME = "last.pt"
BEST_NAME = "best.pt"


def _rank() -> int:
    return int(os.environ.get("RANK", -1))


def _log(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


def epoch_values(trainer: Any) -> dict[str, float]:
    """The contract's metric keys from ultralytics' names for the same numbers (METRICS); nan for the train losses
    only before the epoch's first batch. A name ultralytics no longer uses raises MetricNameError."""
    losses = (
        trainer.label_loss_items(trainer.tloss, prefix="train")
        if trainer.tloss is not None
        else {m.column: float("nan") for m in TRAIN_LOSSES}
    )
    return from_ultralytics(
        {**losses, **(trainer.metrics or {})}, source=f"ultralytics trainer, epoch {trainer.epoch + 1}"
    )


@dataclass
class EpochMonitor:
    """Prints exactly one metric line per epoch and runs the overfitting guard.

    on_fit_epoch_end also fires once more in ultralytics' final evaluation (with epoch+1); the epoch recorded at
    on_train_epoch_end tells the real epochs apart from that one.
    """

    overfit_patience: int = 0
    history: list[tuple[float, float]] = field(default_factory=list)  # (train loss, val loss) per epoch
    _current: int = -1
    _printed: int = -1
    stopped_for_overfitting: bool = False

    def on_train_epoch_end(self, trainer: Any) -> None:
        self._current = trainer.epoch

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if _rank() not in {-1, 0} or trainer.epoch != self._current or trainer.epoch == self._printed:
            return
        self._printed = trainer.epoch
        values = epoch_values(trainer)
        _log(format_epoch_line(trainer.epoch + 1, trainer.epochs, values))
        train_loss = sum(values[m.key] for m in TRAIN_LOSSES)
        val_loss = sum(values[m.key] for m in VAL_LOSSES)
        self.history.append((train_loss, val_loss))
        if self.overfitting() and not trainer.stop:
            n = self.overfit_patience
            _log(
                f"[overfit-guard] stopping after epoch {trainer.epoch + 1}: validation loss rose for {n} consecutive "
                f"epoch(s) while training loss kept falling (overfit_patience={n}); last (train, val) losses: "
                + ", ".join(f"({t:.4f}, {v:.4f})" for t, v in self.history[-(n + 1) :])
            )
            self.stopped_for_overfitting = True
            trainer.stop = True  # ultralytics breaks after this callback (and broadcasts it to DDP ranks)

    def overfitting(self) -> bool:
        """True when the last N epochs each had val loss up and train loss down versus the epoch before."""
        n = self.overfit_patience
        if n <= 0 or len(self.history) < n + 1:
            return False
        window = self.history[-(n + 1) :]
        return all(b[1] > a[1] and b[0] < a[0] for a, b in itertools.pairwise(window))


class Terminated(BaseException):
    """SIGTERM received (SageMaker stop or spot interruption): the latest epoch checkpoint is already saved.

    A BaseException, like KeyboardInterrupt: ultralytics wraps export, plotting and data loading in broad
    ``except Exception`` blocks that would otherwise swallow it and carry on."""


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_suffix(".pt.partial")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)  # atomic: a kill mid-copy never leaves a torn checkpoint


@dataclass
class SpotCheckpointer:
    """Copies ultralytics' last.pt - and best.pt whenever it changed - to the SageMaker checkpoint dir after every
    epoch (S3-synced for spot training), and turns SIGTERM into Terminated - except while a copy is in flight, which
    it lets finish first.

    best.pt must travel too: on resume ultralytics restores best_fitness from last.pt and rewrites best.pt only when
    a later epoch beats it, so without the copy a restarted job would have no best.pt and ship last.pt.
    """

    checkpoint_dir: Path
    _in_copy: bool = False
    _pending: bool = False
    _best_seen: tuple[int, int] | None = None

    @property
    def checkpoint(self) -> Path:
        return self.checkpoint_dir / CHECKPOINT_NAME

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / BEST_NAME

    def on_model_save(self, trainer: Any) -> None:
        if _rank() not in {-1, 0}:
            return
        best = Path(trainer.best)
        with self._critical():
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            # best first: a hard kill between the two copies then leaves a best.pt at least as new as last.pt
            if best.is_file() and _signature(best) != self._best_seen:
                _copy_atomic(best, self.best_checkpoint)
                self._best_seen = _signature(best)
                _log(
                    f"[checkpoint] epoch {trainer.epoch + 1} is the best so far; saved to {self.best_checkpoint}"
                )
            _copy_atomic(Path(trainer.last), self.checkpoint)
        _log(f"[checkpoint] epoch {trainer.epoch + 1} saved to {self.checkpoint}")

    def restore_best(self, target: Path) -> bool:
        """On resume: put the checkpointed best.pt where the trainer keeps its best.pt (True when there was one)."""
        if not self.best_checkpoint.is_file():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.best_checkpoint, target)
        self._best_seen = _signature(target)
        return True

    @contextlib.contextmanager
    def _critical(self) -> Iterator[None]:
        self._in_copy = True
        try:
            yield
        finally:
            self._in_copy = False
        if self._pending:
            raise Terminated("SIGTERM received during checkpoint copy")

    def handle_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self._in_copy:
            self._pending = True
            return
        raise Terminated(f"signal {signum} received")

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle_sigterm)

    def uninstall(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def exit_on_sigterm(self) -> None:
        """Once the job's outcome is written, a SIGTERM ends the process at once with 143 (SIG_DFL would leave
        PID 1 of a container ignoring it until SageMaker's SIGKILL)."""
        signal.signal(signal.SIGTERM, _exit_terminated)


def _exit_terminated(signum: int, frame: FrameType | None) -> None:
    sys.stdout.flush()
    os._exit(128 + signal.SIGTERM)


def register(trainer: Any, monitor: EpochMonitor, checkpointer: SpotCheckpointer) -> None:
    trainer.add_callback("on_train_epoch_end", monitor.on_train_epoch_end)
    trainer.add_callback("on_fit_epoch_end", monitor.on_fit_epoch_end)
    trainer.add_callback("on_model_save", checkpointer.on_model_save)
