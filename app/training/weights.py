"""Where the starting weights come from, and what transfer learning actually transferred.

Order: the ``pretrained`` channel (a ``.pt``, or a previous job's ``model.tar.gz``), else the ``model``
hyperparameter: a model yaml (built from scratch, shipped inside ultralytics) or a ``.pt`` baked into the image under
``weights_dir`` (``$TRAIN_WEIGHTS_DIR``, default ``/opt/ml-weights``: app.training.environment). Nothing is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from app.contracts.artifact import MODEL_PT
from app.contracts.errors import ContractError
from app.contracts.hyperparameters import BAKED_CHECKPOINT, end_to_end_family, end_to_end_message

START_RECORD = "start.json"  # next to the checkpoints, so a resumed job still knows what it started from


class WeightsError(ContractError):
    """Starting weights that cannot be found or used."""


def _from_channel(channel: Path, work_dir: Path) -> Path:
    checkpoints = sorted(channel.rglob("*.pt"))
    if not checkpoints:
        tars = sorted(channel.rglob("*.tar.gz"))
        if len(tars) == 1:  # a previous training job's model.tar.gz
            with tarfile.open(tars[0]) as tar:
                member = next((m for m in tar.getmembers() if Path(m.name).name == MODEL_PT), None)
                if member is None:
                    raise WeightsError(
                        f"{tars[0]}: no {MODEL_PT} inside; expected a training job's model.tar.gz"
                    )
                tar.extract(member, work_dir / "pretrained", filter="data")
                return work_dir / "pretrained" / member.name
        raise WeightsError(f"{channel}: 'pretrained' channel has no .pt checkpoint (or one model.tar.gz)")
    if len(checkpoints) > 1:
        preferred = [p for p in checkpoints if p.name == MODEL_PT]
        if len(preferred) != 1:
            names = [str(p.relative_to(channel)) for p in checkpoints]
            raise WeightsError(
                f"{channel}: 'pretrained' channel has {len(checkpoints)} checkpoints {names}; give one"
            )
        return preferred[0]
    return checkpoints[0]


def resolve_start(
    model: str, pretrained_channel: Path | None, work_dir: Path, *, weights_dir: Path
) -> Path | str:
    """Path of a .pt to start from, or a model yaml name for ultralytics to build."""
    if pretrained_channel is not None:
        return _from_channel(pretrained_channel, work_dir)
    if model.endswith((".yaml", ".yml")):
        return model  # ultralytics ships the architecture yamls; no download
    if not model.endswith(".pt"):
        raise WeightsError(
            f"hyperparameter 'model'={model!r}: expected a model yaml (yolov8n.yaml) or a .pt name"
        )
    candidates = [Path(model), weights_dir / model]
    for path in candidates:
        if path.is_file():
            return path
    baked = sorted(p.name for p in weights_dir.glob("*.pt")) if weights_dir.is_dir() else []
    raise WeightsError(
        f"hyperparameter 'model'={model!r}: no such checkpoint in {weights_dir} (baked in: {baked or 'none'}); "
        "the job runs offline, so give a 'pretrained' channel or a model yaml such as yolov8n.yaml"
    )


def start_record(start: Path | str, *, from_channel: bool, weights_dir: Path) -> dict[str, str | None]:
    """What model.json says the job started from: the checkpoint's file name and sha256, or the yaml."""
    if isinstance(start, str):
        return {"name": start, "sha256": None, "source": "model yaml (trained from scratch)"}
    source = "pretrained channel" if from_channel else f"baked into the image ({weights_dir})"
    if not from_channel and start.name == BAKED_CHECKPOINT:
        source += ", the default start"
    digest = hashlib.sha256()
    with start.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"name": start.name, "sha256": digest.hexdigest(), "source": source}


def write_start_record(
    checkpoint_dir: Path, start: Path | str, *, from_channel: bool, weights_dir: Path
) -> dict[str, str | None]:
    record = start_record(start, from_channel=from_channel, weights_dir=weights_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (checkpoint_dir / START_RECORD).write_text(json.dumps(record) + "\n")
    return record


def read_start_record(checkpoint_dir: Path) -> dict[str, str | None] | None:
    """The record a first attempt wrote (None for checkpoints from before it was kept)."""
    path = checkpoint_dir / START_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


_END_TO_END_HEADS = {"v10Detect": "YOLOv10", "RTDETRDecoder": "RT-DETR"}


def _head_family(head_type: str, end2end: bool, named: str) -> str | None:
    """The end-to-end family of a model whose last module is ``head_type``, or None for the raw-layout heads."""
    if head_type in _END_TO_END_HEADS:
        return end_to_end_family(named) or _END_TO_END_HEADS[head_type]
    return (end_to_end_family(named) or "end-to-end (NMS-free)") if end2end else None


def check_yaml(name: str) -> None:
    """Refuse, before training, a model yaml whose head is end-to-end (whatever the file is called)."""
    from ultralytics.nn.tasks import yaml_model_load

    try:
        cfg = yaml_model_load(name)
    except Exception as exc:  # a yaml ultralytics does not ship (jobs run offline) or cannot parse
        raise WeightsError(
            f"hyperparameter 'model'={name!r}: not a model yaml ultralytics ships ({type(exc).__name__}: {exc})"
        ) from None
    head = (cfg.get("head") or [[None, None, None]])[-1]
    family = _head_family(str(head[2]), bool(cfg.get("end2end")), name)
    if family:
        raise WeightsError(end_to_end_message(f"hyperparameter 'model'={name!r}", family))


def _check_checkpoint_head(checkpoint: Path, model: object) -> None:
    head = model.model[-1]  # type: ignore[attr-defined]
    cfg = getattr(model, "yaml", None) or {}
    # a one-to-one branch (or the yaml's flag) marks an end-to-end head even while it trains in one-to-many mode
    end2end = bool(
        cfg.get("end2end") or getattr(head, "end2end", False) or getattr(head, "one2one_cv2", None)
    )
    family = _head_family(type(head).__name__, end2end, str(cfg.get("yaml_file", "")))
    if family:
        raise WeightsError(end_to_end_message(f"{checkpoint.name} (the starting checkpoint)", family))


@dataclass
class TransferReport:
    """Which tensors of the new model came from the checkpoint, and which start fresh (e.g. a resized class head)."""

    source: str
    source_classes: int
    target_classes: int
    transferred: int
    total: int
    fresh: list[str] = field(default_factory=list)

    def summary(self) -> str:
        fresh_modules = sorted({name.rsplit(".", 1)[0] for name in self.fresh})
        head = (
            f"class head adapted {self.source_classes} -> {self.target_classes} classes"
            if self.source_classes != self.target_classes
            else f"{self.target_classes} classes, same as the checkpoint"
        )
        tail = f"; not transferred: {', '.join(fresh_modules)}" if fresh_modules else ""
        return f"[transfer] {self.transferred}/{self.total} tensors transferred from {self.source} ({head}){tail}"

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "source_classes": self.source_classes,
            "target_classes": self.target_classes,
            "transferred": self.transferred,
            "total": self.total,
            "not_transferred": self.fresh,
        }


def transfer_report(checkpoint: Path, nc: int) -> TransferReport:
    """Build the target model exactly as ultralytics' trainer will and load the checkpoint the same way; a tensor was
    transferred when it now equals the checkpoint's tensor of the same name."""
    import torch
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    try:
        source, _ = load_checkpoint(checkpoint)
    # a truncated upload or a file that is not a checkpoint: the user's input, say which
    except Exception as exc:
        raise WeightsError(
            f"{checkpoint}: not a loadable ultralytics checkpoint ({type(exc).__name__}: {exc}); "
            "expected a .pt written by ultralytics training (e.g. a previous job's model.pt)"
        ) from None
    _check_checkpoint_head(checkpoint, source)
    src = {k: v.float() for k, v in source.state_dict().items()}
    model = DetectionModel(source.yaml, nc=nc, verbose=False)
    model.load(source, verbose=False)
    counted = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = [
        k
        for k, v in counted.items()
        if not (k in src and v.shape == src[k].shape and torch.equal(v.float(), src[k]))
    ]
    return TransferReport(
        source=checkpoint.name,
        source_classes=int(getattr(source, "nc", len(getattr(source, "names", {})))),
        target_classes=nc,
        transferred=len(counted) - len(fresh),
        total=len(counted),
        fresh=fresh,
    )


def largest_stride(start: Path | str) -> int:
    """The model's largest detection stride (32 for P3-P5 models, 64 for P6 ones), from its yaml or checkpoint."""
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    model = DetectionModel(start, verbose=False) if isinstance(start, str) else load_checkpoint(start)[0]
    return int(model.stride.max())


def check_imgsz(imgsz: int, start: Path | str) -> int:
    """Refuse, before training, an imgsz the model cannot take as is: ultralytics would round it up to a multiple of
    the largest stride with a warning, and the export would then disagree with model.json's imgsz after every epoch."""
    stride = largest_stride(start)
    if imgsz % stride:
        name = start if isinstance(start, str) else start.name
        raise WeightsError(
            f"hyperparameter 'imgsz'={imgsz}: not a multiple of {name}'s largest stride {stride}; use "
            f"{imgsz - imgsz % stride or stride} or {imgsz - imgsz % stride + stride}"
        )
    return stride
