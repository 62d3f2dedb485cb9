"""Orchestration of one training job: read the contract, check the data, train (or resume), write the artifact.

Exit codes (what SageMaker sees):
  0    the artifact is complete in <opt_ml>/model
  1    failed; the reason is in <opt_ml>/output/failure (first line = what to fix)
  143  SIGTERM (StopTrainingJob or a spot interruption): the last finished epoch is in <opt_ml>/checkpoints/last.pt
       (the best so far in best.pt) and a restarted job resumes from the next epoch. Non-zero on purpose, so nothing
       mistakes an interrupted run for a finished one; SageMaker marks a job it stopped itself as Stopped whatever
       the code, and restarts interrupted managed-spot jobs from the synced checkpoints. The handler is installed
       first thing and stays until the process exits (in a container PID 1 ignores a signal it has no handler for),
       so SIGTERM ends the job within seconds before, during or after the training loop.
  130  Ctrl-C (a local run): one line, the last finished epoch is in <opt_ml>/checkpoints like on SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.contracts.artifact import Int8Result
from app.contracts.comparison import Comparison
from app.contracts.dataset import IMAGES_DIR, VAL, DatasetInfo
from app.contracts.errors import ContractError
from app.contracts.hyperparameters import OUR_ADDITIONS, Hyperparameters, gpu_ids
from app.contracts.metrics import (
    KEYS,
    TRAIN_LOSSES,
    VAL_LOSSES,
    VERDICT_VALUES,
    format_comparison_line,
    format_final_line,
    format_int8_line,
    from_ultralytics,
)
from app.training.callbacks import SpotCheckpointer, Terminated
from app.training.dataset_check import check_dataset, write_training_yaml
from app.training.device import check as check_device
from app.training.device import instance_type
from app.training.environment import TrainingEnvironment
from app.training.failure import failure_text, write_failure
from app.training.offline import go_offline
from app.training.sagemaker import OptMl, read_config

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_FAILED, EXIT_TERMINATED, EXIT_INTERRUPTED = 0, 1, 143, 130
_NOT_ULTRALYTICS = set(OUR_ADDITIONS)


@dataclass
class TrainingRecord:
    """model.json's ``training``: how the model was made, filled in as the job goes (in this order).

    A field the job never reached is left out of :meth:`as_dict`; ``None`` is kept where it says something:
    ``shipped_epoch`` (a checkpoint that does not know its epoch) and ``stopped_by`` once a training loop ran
    (every epoch ran)."""

    hyperparameters: dict[str, Any]
    device: str
    host: str
    start: dict[str, str | None] | None = None
    transfer: dict[str, Any] | None = None
    resumed_from_epoch: int | None = None
    train_seconds: float | None = None
    train_cpu_seconds: float | None = None  # this process only (not DDP workers)
    epochs_run: int | None = None
    stopped_by: str | None = None
    weights: str | None = None
    shipped_epoch: int | None = None

    def as_dict(self) -> dict[str, object]:
        said = {"shipped_epoch", "start", *(("stopped_by",) if self.train_seconds is not None else ())}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not None or name in said}


@dataclass(frozen=True)
class Job:
    """What every step of one job needs: where it runs, what it trains on, with what."""

    opt: OptMl
    environment: TrainingEnvironment
    dataset: DatasetInfo
    hp: Hyperparameters
    sample: Path  # the validation image model.onnx is test-run on
    champion: Path | None = (
        None  # the 'champion' channel, compared with the candidate (app.training.comparison)
    )

    @property
    def work(self) -> Path:
        return self.opt.output_dir / "work"

    @property
    def data_yaml(self) -> Path:
        return self.work / "data.yaml"


def _log(message: str) -> None:
    print(message, flush=True)


def resolve_device(device: str) -> str:
    """'' = every GPU of the instance (ultralytics runs DDP when there are several), CPU when there is none."""
    if device:
        return device
    import torch

    count = torch.cuda.device_count()
    return ",".join(str(i) for i in range(count)) if count else "cpu"


def check_batch(batch: int, device: str) -> None:
    """AutoBatch (batch=-1) sizes the batch for one GPU; ultralytics refuses it under DDP only after setup."""
    if batch == -1 and len(gpu_ids(device)) > 1:
        raise ContractError(
            f"hyperparameter 'batch'=-1 (AutoBatch) on {len(gpu_ids(device))} GPUs (device {device}): AutoBatch "
            "works on one GPU only; give a total batch size divisible by the number of GPUs, or device=0"
        )


def first_val_image(dataset_dir: Path) -> Path:
    """The validation image the exported graph is test-run on."""
    return min(p for p in (dataset_dir / IMAGES_DIR / VAL).iterdir() if p.is_file())


def ultralytics_overrides(
    hp: Hyperparameters, *, model: str, data: Path, save_dir: Path, device: str
) -> dict:
    """Our typed hyperparameters -> YOLO.train keyword arguments (same names; a few values translated)."""
    args: dict[str, Any] = {k: v for k, v in hp.model_dump().items() if k not in _NOT_ULTRALYTICS}
    args.update(
        model=model,
        data=str(data),
        device=device,
        cache=False if hp.cache == "false" else hp.cache,
        amp=hp.amp and device != "cpu",  # AMP is a GPU feature; ultralytics' CPU path would only warn
        save_dir=str(save_dir),
        exist_ok=True,
        verbose=True,
    )
    if hp.freeze is None:
        args.pop("freeze")
    return args


def _usable_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint's metadata, or None (with a loud warning) when it is torn or unreadable."""
    if not path.is_file():
        return None
    from ultralytics.utils.patches import torch_load

    try:
        ckpt = torch_load(path, map_location="cpu")
        return {"epoch": int(ckpt["epoch"]), "epochs": int(ckpt["train_args"]["epochs"]), "ckpt": ckpt}
    except Exception as exc:  # a half-synced object from S3 must not block the job forever
        aside = path.with_suffix(".unreadable")
        os.replace(path, aside)
        _log(f"[checkpoint] WARNING {path} is unreadable ({exc}); moved to {aside} and starting from scratch")
        return None


def train(opt: OptMl, environment: TrainingEnvironment, checkpointer: SpotCheckpointer) -> int:
    config = read_config(opt)  # fails in ~1 s, before torch is imported
    hp = config.hyperparameters
    # a GPU instance trains on its GPU or fails now
    _log(check_device(instance_type(config, environment), hp.device))
    dataset = check_dataset(config.dataset_dir)
    if config.ignored_hyperparameters:
        _log(f"[config] ignoring SageMaker-reserved hyperparameters {list(config.ignored_hyperparameters)}")
    job = Job(
        opt=opt,
        environment=environment,
        dataset=dataset,
        hp=hp,
        sample=first_val_image(config.dataset_dir),
        champion=config.champion_dir,
    )
    go_offline(job.work)

    import pandas as pd
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils import torch_utils

    from app.training import callbacks, weights

    device = resolve_device(hp.device)
    check_batch(hp.batch, device)
    if device == "cpu":  # the container is ours alone; ultralytics leaves one core idle
        torch_utils.NUM_THREADS = os.cpu_count() or 1
    data_yaml = write_training_yaml(config.dataset_dir, dataset, job.data_yaml)
    save_dir = job.work / "run"
    monitor = callbacks.EpochMonitor(overfit_patience=hp.overfit_patience)
    record = TrainingRecord(hyperparameters=hp.model_dump(), device=device, host=config.current_host)

    resume = _usable_checkpoint(checkpointer.checkpoint)
    best_ckpt = _usable_checkpoint(checkpointer.best_checkpoint) if resume else None
    if resume:  # the first attempt resolved the start and kept its record next to the checkpoints
        record.start = weights.read_start_record(opt.checkpoint_dir)
    if resume and resume["epoch"] + 1 >= resume["epochs"]:
        _log(
            f"[checkpoint] {checkpointer.checkpoint} is from the final epoch; packaging it without retraining"
        )
        return _package_finished(job, record, checkpointer, last=resume, best=best_ckpt)
    if resume:
        _log(f"[checkpoint] resuming from {checkpointer.checkpoint} at epoch {resume['epoch'] + 2}")
        overrides = {
            "resume": str(checkpointer.checkpoint),
            "data": str(data_yaml),
            "save_dir": str(save_dir),
            "device": device,
            "workers": hp.workers,
        }
        record.resumed_from_epoch = resume["epoch"] + 2
        _restore_results(resume["ckpt"], save_dir / "results.csv")
    else:
        start = weights.resolve_start(
            hp.model, config.pretrained_dir, job.work, weights_dir=environment.weights_dir
        )
        if isinstance(start, str):
            weights.check_yaml(start)  # an end-to-end family fails here, not at export after every epoch
        record.start = weights.write_start_record(
            opt.checkpoint_dir,
            start,
            from_channel=config.pretrained_dir is not None,
            weights_dir=environment.weights_dir,
        )
        _log(f"[start] {record.start}")
        if isinstance(start, Path):
            report = weights.transfer_report(start, nc=len(dataset.classes))
            _log(report.summary())
            record.transfer = report.as_dict()
        else:
            _log(f"[transfer] none: building {start} from scratch for {len(dataset.classes)} classes")
        weights.check_imgsz(
            hp.imgsz, start
        )  # e.g. a P6 model (stride 64) at imgsz 608: refused before training
        overrides = ultralytics_overrides(
            hp, model=str(start), data=data_yaml, save_dir=save_dir, device=device
        )

    trainer = DetectionTrainer(overrides=overrides)
    if best_ckpt and checkpointer.restore_best(trainer.best):
        _log(f"[checkpoint] restored best.pt of epoch {best_ckpt['epoch'] + 1} to {trainer.best}")
    callbacks.register(trainer, monitor, checkpointer)
    started, cpu_started = time.monotonic(), time.process_time()
    trainer.train()
    record.train_seconds = round(time.monotonic() - started, 1)
    record.train_cpu_seconds = round(time.process_time() - cpu_started, 1)
    record.epochs_run = len(pd.read_csv(trainer.csv)) if trainer.csv.exists() else 0
    # On multi-GPU the guard ran in a DDP worker, so this process only knows that training stopped early.
    if record.epochs_run < trainer.epochs:
        record.stopped_by = "overfit_guard" if monitor.stopped_for_overfitting else "patience_or_guard"
    # ship best.pt (final_eval re-validated it into trainer.metrics); last.pt only when no epoch was validated
    shipped, copy = (
        (trainer.best, checkpointer.best_checkpoint) if trainer.best.exists() else (trainer.last, None)
    )
    record.weights = shipped.name
    record.shipped_epoch = _checkpoint_epoch(copy or checkpointer.checkpoint)
    metrics = dict(trainer.metrics or {}) or _checkpoint_metrics(shipped)  # DDP: the workers held the metrics
    return _finish(job, record, shipped, pd.read_csv(trainer.csv), metrics, save_dir=save_dir)


def _restore_results(ckpt: dict[str, Any], csv: Path) -> None:
    """A restarted spot job runs on a fresh instance: bring back the per-epoch rows so far, which ultralytics keeps in
    the checkpoint, so results.csv and loss.png cover every epoch (ultralytics appends the new ones)."""
    import pandas as pd

    if csv.exists() or not ckpt.get("train_results"):
        return
    csv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ckpt["train_results"]).to_csv(csv, index=False)


def _checkpoint_metrics(path: Path) -> dict[str, Any]:
    from ultralytics.utils.patches import torch_load

    return dict(torch_load(path, map_location="cpu").get("train_metrics") or {})


def _checkpoint_epoch(path: Path) -> int | None:
    """The 1-based epoch an unstripped checkpoint copy was saved at (ultralytics' stripped files say -1)."""
    from ultralytics.utils.patches import torch_load

    if not path.is_file():
        return None
    epoch = int(torch_load(path, map_location="cpu").get("epoch", -1))
    return epoch + 1 if epoch >= 0 else None


def _package_finished(
    job: Job,
    record: TrainingRecord,
    checkpointer: SpotCheckpointer,
    *,
    last: dict[str, Any],
    best: dict[str, Any] | None,
) -> int:
    """A restart after the last epoch finished (e.g. killed during export): the checkpoints have all we need.

    best.pt is shipped as a normal run would; last.pt only for checkpoints written before best.pt was kept."""
    import pandas as pd
    from ultralytics.utils.torch_utils import strip_optimizer

    chosen, path = (best, checkpointer.best_checkpoint) if best else (last, checkpointer.checkpoint)
    if best is None:
        _log(f"[checkpoint] WARNING no usable {checkpointer.best_checkpoint}; packaging last.pt")
    final = job.work / "final.pt"
    final.parent.mkdir(parents=True, exist_ok=True)
    strip_optimizer(path, str(final))
    results = pd.DataFrame(last["ckpt"].get("train_results") or {})  # last.pt holds every epoch's row
    record.epochs_run = len(results)
    record.weights = path.name
    record.shipped_epoch = chosen["epoch"] + 1
    metrics = {k: v for k, v in (chosen["ckpt"].get("train_metrics") or {}).items() if k != "fitness"}
    return _finish(job, record, final, results, metrics, save_dir=None)


def final_values(metrics: dict[str, float], results: pd.DataFrame, epoch: object) -> dict[str, float]:
    """The final metric line's values: model.json's metrics plus the losses of the shipped epoch's results row (nan
    when there is no such row); a results.csv without one of METRICS' loss columns raises MetricNameError."""
    results = results.rename(columns=str.strip)
    rows = results[results["epoch"] == epoch] if "epoch" in results else results.iloc[0:0]
    values = {key: float(metrics.get(key, float("nan"))) for key in KEYS}
    if len(rows):
        losses = TRAIN_LOSSES + VAL_LOSSES
        source = f"results.csv row of epoch {epoch}"
        values.update(from_ultralytics(rows.iloc[-1].to_dict(), metrics=losses, source=source))
    return values


def int8_values(result: Int8Result) -> dict[str, float]:
    """The int8 metric line's values from model.json's int8 block (nan where the step measured nothing)."""
    nan = float("nan")
    metrics = result.int8_onnx_metrics or {}
    evidence = result.evidence or {}
    agreement = evidence.get("agreement")
    return {
        "int8_shipped": float(result.shipped),
        "int8_mAP50": metrics.get("mAP50", nan),
        "int8_mAP50-95": metrics.get("mAP50-95", nan),
        "int8_drop": nan if result.map50_95_drop is None else result.map50_95_drop,
        "int8_drop_upper": float(evidence.get("map50_95_drop_upper", nan)),  # type: ignore[arg-type]
        "int8_agreement": float(agreement["agreement"]) if isinstance(agreement, dict) else nan,
    }


def comparison_values(comparison: Comparison) -> dict[str, float]:
    """The comparison metric line's values from model.json's comparison block (nan where it measured nothing)."""
    nan = float("nan")
    overall = comparison.overall
    return {
        "comparison_verdict": VERDICT_VALUES.get(comparison.verdict or "", nan),
        "comparison_difference": overall.difference if overall else nan,
        "comparison_ci_low": overall.ci_low if overall else nan,
        "comparison_ci_high": overall.ci_high if overall else nan,
        "comparison_worse_classes": float(len(comparison.worse_classes)) if overall else nan,
    }


def _finish(
    job: Job,
    record: TrainingRecord,
    weights_path: Path,
    results: pd.DataFrame,
    metrics: dict[str, Any],
    *,
    save_dir: Path | None,
) -> int:
    from app.training.artifact import write_artifact

    opt = job.opt
    _log(f"[artifact] writing {opt.model_dir}: model.pt, model.onnx (test-run with ONNX Runtime), model.json")
    card = write_artifact(
        model_dir=opt.model_dir,
        weights=weights_path,
        results=results,
        metrics=metrics,
        dataset=job.dataset,
        hyperparameters=job.hp,
        training=record.as_dict(),
        sample_image=job.sample,
        data_yaml=job.data_yaml,  # written by train() before any branch reaches here
        job_name=job.environment.job_name,
        champion=job.champion,
    )
    # ultralytics' plots go to output.tar.gz, the weights do not
    if save_dir is not None and save_dir.is_dir():
        plots = opt.output_dir / "data" / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        for path in save_dir.glob("*.png"):
            shutil.copyfile(path, plots / path.name)
    _log(
        f"[artifact] {opt.model_dir}: {card.name} {card.version}, classes {card.class_names}, metrics {card.metrics}"
    )
    if card.int8 is not None:  # before the final line: the int8 numbers have keys of their own
        _log(format_int8_line(int8_values(card.int8)))
    if card.comparison is not None and card.comparison.status != "no_champion":
        _log(format_comparison_line(comparison_values(card.comparison)))
    # last [metrics] line = the shipped model's, so SageMaker's final values (the registrar's gate) match model.json
    _log(format_final_line(final_values(card.metrics, results, record.shipped_epoch)))
    return EXIT_OK


def run_job(opt: OptMl, environment: TrainingEnvironment) -> int:
    """Run the job; map every outcome onto the SageMaker exit contract."""
    checkpointer = SpotCheckpointer(opt.checkpoint_dir)
    checkpointer.install()  # first thing: from here on SIGTERM raises Terminated, wherever it lands
    _log(
        f"[job] training under {opt.root} (pid {os.getpid()}); SIGTERM stops it with exit code {EXIT_TERMINATED}"
    )
    try:
        return _run(opt, environment, checkpointer)
    except Terminated as exc:
        _log(
            f"[sigterm] {exc}; stopping. The last finished epoch is in {opt.checkpoint_dir}; a restart resumes there"
        )
        return EXIT_TERMINATED
    except KeyboardInterrupt:  # Ctrl-C of a local run: one line instead of ultralytics' and torch's frames
        print(
            f"[interrupted] Ctrl-C; stopping. The last finished epoch is in {opt.checkpoint_dir}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_INTERRUPTED
    finally:
        checkpointer.exit_on_sigterm()  # the outcome is decided: a late SIGTERM ends the process at once


def _run(opt: OptMl, environment: TrainingEnvironment, checkpointer: SpotCheckpointer) -> int:
    # a stale reason from a previous attempt would mislead
    (opt.output_dir / "failure").unlink(missing_ok=True)
    try:
        return train(opt, environment, checkpointer)
    except ContractError as exc:
        text = failure_text(exc, expected=True)
    except Exception as exc:  # reported, not hidden: the failure file carries the reason and traceback tail
        text = failure_text(exc, expected=False)
    path = write_failure(opt.output_dir, text)
    print(f"[failure] {text.splitlines()[0]} (written to {path})", file=sys.stderr, flush=True)
    return EXIT_FAILED
