"""The demo's champion comparison (issue 27): a second, short training run - the first run's model fine-tuned again
on the same data - with the first run's artifact as its ``champion`` channel, as the runner would pass a stage's
Approved model; then model.json's comparison block, printed.

The challenger trains ``EPOCHS`` epochs without the int8 step, so the demo's added time is one short fine-tune plus two
val passes and the bootstrap.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from app.contracts import artifact
from app.contracts.channels import CHAMPION_CHANNEL, DATASET_CHANNEL, PRETRAINED_CHANNEL
from app.contracts.comparison import Comparison
from scripts.lib.cli import OperatorError

EPOCHS = 2


def _tarball(model_dir: Path, out: Path) -> Path:
    """The champion as SageMaker stores a job's /opt/ml/model: model.tar.gz, files at its root."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
    return out


def challenger_opt_ml(
    root: Path, *, champion: Path, dataset: Path, hyperparameters: dict[str, object]
) -> Path:
    """A fake /opt/ml: the dataset, the champion's model.pt to fine-tune, the champion's model.tar.gz to compare."""
    shutil.rmtree(root, ignore_errors=True)
    channels = root / "input" / "data"
    for name in (PRETRAINED_CHANNEL, CHAMPION_CHANNEL):
        (channels / name).mkdir(parents=True)
    shutil.copytree(dataset, channels / DATASET_CHANNEL)
    shutil.copyfile(champion / artifact.MODEL_PT, channels / PRETRAINED_CHANNEL / artifact.MODEL_PT)
    _tarball(champion, channels / CHAMPION_CHANNEL / "model.tar.gz")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {"TrainingInputMode": "File"}
                for name in (DATASET_CHANNEL, PRETRAINED_CHANNEL, CHAMPION_CHANNEL)
            }
        )
    )
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    return root


def comparison_block(comparison: Comparison) -> list[str]:
    """model.json's comparison, as a person reads it."""
    lines = [f"comparison: {comparison.status}" + (f" - {comparison.reason}" if comparison.reason else "")]
    if comparison.champion:
        lines.append(f"  champion:  {comparison.champion.version}  ({comparison.champion.model_data})")
    if comparison.status != "compared" or comparison.overall is None or comparison.tolerances is None:
        return lines
    tol = comparison.tolerances
    lines += [
        f"  verdict:   {comparison.verdict}  ({comparison.why})",
        f"  evidence:  {comparison.images} val images, {comparison.resamples} paired bootstrap resamples, "
        f"{tol.confidence:.0%} intervals; imgsz {comparison.imgsz}",
        f"  tolerances: overall -{tol.map_drop_tolerance:g}, per class -{tol.class_drop_tolerance:g} "
        f"(classes with >= {tol.min_class_instances} instances)",
        f"  {'':<14}{'champion':>9}{'candidate':>10}{'diff':>9}  {'CI':<19}{'inst':>5}",
    ]
    for name, d in [("ALL (shared)", comparison.overall), *comparison.classes.items()]:
        flag = " WORSE" if name in comparison.worse_classes else (
            " underpowered" if name in comparison.underpowered_classes else "")  # fmt: skip
        lines.append(
            f"  {name:<14}{d.champion:>9.3f}{d.candidate:>10.3f}{d.difference:>+9.3f}  "
            f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}]{d.instances:>6}{flag}"
        )
    for label, names in (("new classes", comparison.new_classes), ("gone classes", comparison.gone_classes)):
        if names:
            lines.append(f"  {label}: {', '.join(names)}")
    lines += [f"  report:    {path}" for path in comparison.reports.values()]
    return lines


def challenge(
    champion: Path,
    *,
    dataset: Path,
    workdir: Path,
    hyperparameters: dict[str, object],
    run: Callable[..., None],
    say: Callable[[str], None],
) -> Path:
    """Train the challenger against ``champion`` (an artifact folder); print the comparison; return its model dir.
    ``run`` is the demo's process runner (it raises OperatorError with the step's last lines)."""
    params = {**hyperparameters, "epochs": EPOCHS, "int8": "false", "name": "demo-tools-detector-challenger"}
    opt_ml = challenger_opt_ml(
        workdir / "opt_ml_challenger", champion=champion, dataset=dataset, hyperparameters=params
    )
    say(
        f"  challenger: {champion / artifact.MODEL_PT} fine-tuned {EPOCHS} more epochs; the first model is its champion"
    )
    run([sys.executable, "-m", "app.training", "--opt-ml", str(opt_ml)], what="challenger training",
        echo=lambda line: line.startswith("[comparison]"))  # fmt: skip
    model_dir = opt_ml / "model"
    comparison = artifact.read_model_card(model_dir).comparison
    if comparison is None:
        raise OperatorError(f"{model_dir / artifact.MODEL_JSON}: no 'comparison' block")
    for line in comparison_block(comparison):
        say(f"  {line}")
    return model_dir


def replay(
    requests: list[tuple[bytes, str]],
    *,
    workdir: Path,
    champion: Path,
    challenger: Path,
    run: Callable[..., None],
    say: Callable[[str], None],
) -> Path:
    """The demo's own traffic (``requests``: body, content type), written as SageMaker data capture records it
    (``<workdir>/capture/AllTraffic/yyyy/mm/dd/hh/``), replayed through challenger and champion with
    ``release compare`` as an operator does before Prod; returns the replay report's folder."""
    from datetime import UTC, datetime

    from scripts.lib.replay.capture import capture_line

    now = datetime.now(UTC)
    capture = workdir / "capture"
    shutil.rmtree(capture, ignore_errors=True)  # the demo's own folder (its workdir marker)
    hour = capture / "AllTraffic" / f"{now:%Y/%m/%d/%H}"
    hour.mkdir(parents=True)
    when = f"{now:%Y-%m-%dT%H:%M:%SZ}"
    lines = [
        capture_line(body, content_type, event_id=f"demo-{n}", inference_time=when)
        for n, (body, content_type) in enumerate(requests, start=1)
    ]
    (hour / f"{now:%M-%S}-000-demo.jsonl").write_text("\n".join(lines) + "\n")
    say(f"  wrote {len(lines)} requests as data capture records under {capture}")
    out = workdir / "replay"
    cmd = [sys.executable, "-m", "scripts.release", "compare", "--stage", "Dev", "--capture", str(capture)]
    cmd += ["--candidate", str(challenger), "--champion", str(champion), "--out", str(out)]
    run(cmd, what="release compare (replay of the demo's traffic)")
    return out
