"""The SageMaker training contract: the ``/opt/ml`` tree and the config files SageMaker writes into it.

``/opt/ml`` can be moved for local runs (``--opt-ml DIR`` or env ``SM_OPT_ML``, read by app.training.environment).
Everything here is standard library + app.contracts so a bad configuration fails in about a second, before torch is
imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.contracts.channels import CHAMPION_CHANNEL, DATASET_CHANNEL, PRETRAINED_CHANNEL
from app.contracts.errors import ContractError
from app.contracts.hyperparameters import Hyperparameters, parse_hyperparameters
from app.contracts.instance_types import MAX_TRAINING_INSTANCES
from app.training.environment import TrainingEnvironment

DEFAULT_OPT_ML = Path("/opt/ml")
KNOWN_CHANNELS: frozenset[str] = frozenset({DATASET_CHANNEL, PRETRAINED_CHANNEL, CHAMPION_CHANNEL})
# Names the SageMaker Python SDK / service may add on its own; not ours to validate.
RESERVED_PREFIX = "sagemaker_"


class JobConfigError(ContractError):
    """A SageMaker config file or channel that does not meet the training contract."""


@dataclass(frozen=True)
class OptMl:
    """Paths of one ``/opt/ml`` tree."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def channel(self, name: str) -> Path:
        return self.data_dir / name


def resolve_opt_ml(flag: str | None, environment: TrainingEnvironment) -> OptMl:
    """The flag wins, then env SM_OPT_ML, then /opt/ml."""
    return OptMl(Path(flag or environment.opt_ml or DEFAULT_OPT_ML).resolve())


def _read_json(path: Path, *, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise JobConfigError(f"{path}: missing; SageMaker writes it before starting the container")
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise JobConfigError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


@dataclass(frozen=True)
class TrainingConfig:
    """Everything read from ``/opt/ml/input/config`` and the channel folders."""

    hyperparameters: Hyperparameters
    dataset_dir: Path
    pretrained_dir: Path | None
    champion_dir: Path | None  # the stage's Approved model to compare with (app.training.champion)
    ignored_hyperparameters: tuple[str, ...]
    current_host: str
    instance_type: str | None  # resourceconfig.json's current_instance_type; None for local runs that omit it


def read_hyperparameters(path: Path) -> tuple[Hyperparameters, tuple[str, ...]]:
    """Typed hyperparameters; an absent file means all defaults. SageMaker-reserved names are set aside."""
    raw = _read_json(path, required=False) or {}
    if not isinstance(raw, dict):
        raise JobConfigError(
            f"{path}: expected a JSON object of name -> string value, got {type(raw).__name__}"
        )
    ignored = tuple(sorted(k for k in raw if k.startswith(RESERVED_PREFIX)))
    ours = {k: v for k, v in raw.items() if not k.startswith(RESERVED_PREFIX)}
    return parse_hyperparameters(ours, source=str(path)), ignored


def _check_channels(opt: OptMl) -> None:
    """inputdataconfig.json (when present) must declare the dataset channel, in File mode, and nothing unknown."""
    path = opt.config_dir / "inputdataconfig.json"
    config = _read_json(path, required=False)
    if config is None:
        return  # local runs may omit it; the channel folders below are still checked
    if not isinstance(config, dict):
        raise JobConfigError(f"{path}: expected a JSON object of channel name -> settings")
    unknown = sorted(set(config) - KNOWN_CHANNELS)
    if unknown:
        raise JobConfigError(
            f"{path}: unknown channel(s) {unknown}; expected '{DATASET_CHANNEL}' [+ '{PRETRAINED_CHANNEL}'] [+ '{CHAMPION_CHANNEL}']"
        )
    if DATASET_CHANNEL not in config:
        raise JobConfigError(
            f"{path}: no '{DATASET_CHANNEL}' channel; the training job needs the data-prep output"
        )
    for name, settings in config.items():
        mode = (settings or {}).get("TrainingInputMode", "File")
        if mode not in {"File", "FastFile"}:
            raise JobConfigError(
                f"{path}: channel '{name}' uses TrainingInputMode {mode}; expected File or FastFile"
            )


def _resources(opt: OptMl) -> tuple[str, str | None]:
    """(current host, instance type) from resourceconfig.json; more than one host is refused.

    SageMaker names the instance type there (``current_instance_type``; "How Amazon SageMaker Provides Training
    Information", https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html,
    read 2026-11-30)."""
    path = opt.config_dir / "resourceconfig.json"
    config = _read_json(path, required=False) or {}
    hosts = config.get("hosts") or []
    if len(hosts) > MAX_TRAINING_INSTANCES:
        raise JobConfigError(
            f"{path}: {len(hosts)} hosts {hosts}; this container trains on one instance (all of its GPUs), "
            "set InstanceCount=1"
        )
    return str(config.get("current_host", "local")), str(config.get("current_instance_type") or "") or None


def read_config(opt: OptMl) -> TrainingConfig:
    """Read and check the whole input side of the contract; raise ContractError naming the file/field."""
    hyperparameters, ignored = read_hyperparameters(opt.config_dir / "hyperparameters.json")
    _check_channels(opt)
    host, instance_type = _resources(opt)
    dataset = opt.channel(DATASET_CHANNEL)
    if not dataset.is_dir():
        raise JobConfigError(
            f"{dataset}: missing '{DATASET_CHANNEL}' channel; expected the data-prep output (dataset.json, data.yaml, "
            "images/, labels/)"
        )
    pretrained, champion = opt.channel(PRETRAINED_CHANNEL), opt.channel(CHAMPION_CHANNEL)
    return TrainingConfig(
        hyperparameters=hyperparameters,
        dataset_dir=dataset,
        pretrained_dir=pretrained if pretrained.is_dir() else None,
        champion_dir=champion if champion.is_dir() else None,
        ignored_hyperparameters=ignored,
        current_host=host,
        instance_type=instance_type,
    )
