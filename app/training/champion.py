"""The ``champion`` channel: the stage's Approved model, which the candidate is compared with after training.

Read the way the ``pretrained`` channel is (app.training.weights): a previous training job's ``model.tar.gz``
(SageMaker copies the S3 object into ``/opt/ml/input/data/champion/``), or its files already untarred (local runs).
Only ``model.onnx`` and ``model.json`` are used: the champion is scored as it serves, fp32.

The channel's S3 URI is not visible inside the container, so the runner passes the champion's identity as the
hyperparameters ``champion_version`` (its model package ARN) and ``champion_model_data`` (the URI); when they are
empty (a local run), the champion's own model.json version and the channel's local path stand in.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from app.contracts.artifact import MODEL_JSON, MODEL_ONNX, ArtifactError, ModelCard, read_model_card
from app.contracts.channels import CHAMPION_CHANNEL
from app.contracts.comparison import ChampionRef
from app.contracts.errors import ContractError
from app.contracts.hyperparameters import Hyperparameters

NEEDED = (MODEL_ONNX, MODEL_JSON)


class ChampionError(ContractError):
    """A champion channel that cannot be read: the comparison fails with this reason, the candidate still ships."""


@dataclass(frozen=True)
class Champion:
    model_dir: Path  # holds model.onnx and model.json
    card: ModelCard
    ref: ChampionRef

    @property
    def onnx(self) -> Path:
        return self.model_dir / MODEL_ONNX


def _untar(archive: Path, target: Path) -> Path:
    try:
        with tarfile.open(archive) as tar:
            members = {
                Path(m.name).name: m for m in tar.getmembers() if m.isfile() and Path(m.name).name in NEEDED
            }
            missing = [name for name in NEEDED if name not in members]
            if missing:
                raise ChampionError(
                    f"{archive}: no {missing} inside; expected a training job's model.tar.gz ({', '.join(NEEDED)})"
                )
            target.mkdir(parents=True, exist_ok=True)
            for name, member in members.items():
                source = tar.extractfile(member)
                assert source is not None  # a regular file (checked above)
                (target / name).write_bytes(source.read())
    except (tarfile.TarError, EOFError, OSError) as exc:  # truncated or not a tar at all
        raise ChampionError(f"{archive}: not a readable model.tar.gz ({type(exc).__name__}: {exc})") from None
    return target


def _model_dir(channel: Path, work_dir: Path) -> tuple[Path, Path]:
    """(folder with model.onnx + model.json, what the channel held)."""
    if all((channel / name).is_file() for name in NEEDED):
        return channel, channel
    tars = sorted(channel.rglob("*.tar.gz"))
    if len(tars) != 1:
        found = sorted(str(p.relative_to(channel)) for p in channel.rglob("*") if p.is_file())
        raise ChampionError(
            f"{channel}: '{CHAMPION_CHANNEL}' channel holds {found or 'nothing'}; expected one model.tar.gz of a "
            f"previous training job (or its {' and '.join(NEEDED)})"
        )
    return _untar(tars[0], work_dir / CHAMPION_CHANNEL), tars[0]


def read_champion(channel: Path, work_dir: Path, hp: Hyperparameters) -> Champion:
    """The champion in ``channel``; raise ChampionError naming the file and what was expected."""
    model_dir, source = _model_dir(channel, work_dir)
    try:
        card = read_model_card(model_dir)
    except ArtifactError as exc:
        raise ChampionError(f"champion {exc}") from None
    ref = ChampionRef(
        version=hp.champion_version or card.version,
        model_data=hp.champion_model_data or source.resolve().as_uri(),
    )
    return Champion(model_dir=model_dir, card=card, ref=ref)
