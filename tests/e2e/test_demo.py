"""The demo pipeline end to end (issue 8), with small settings: the same steps `make demo` runs, as processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.contracts import artifact, dataset, metrics
from infra.paths import REPO_ROOT
from tests.fixtures.artifacts import checked_final_line

EPOCHS = 2


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo")
    cmd = [
        sys.executable, "-m", "scripts.demo", "--workdir", str(workdir), "--images", "48", "--held-out", "2",
        "--epochs", str(EPOCHS), "--imgsz", "160", "--batch", "8", "--no-synth",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    return proc, workdir


def test_demo_exits_zero_and_names_every_step(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for step in ("1/6 labels", "2/6 data prep", "3/6 training", "4/6 serving", "6/6 summary"):
        assert f"== {step}" in proc.stdout


def test_demo_dataset_meets_the_dataset_contract(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, workdir = demo_run
    info = dataset.validate_layout(workdir / "dataset")
    assert info.splits["train"] > 0 and info.splits["val"] > 0


def test_demo_training_prints_one_metric_line_per_epoch(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, _ = demo_run
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip().startswith(metrics.PREFIX)]
    epochs = [line for line in lines if metrics.is_epoch_line(line)]
    assert len(epochs) == EPOCHS
    assert all(metrics.parse_epoch_line(line) for line in epochs)


def test_demo_training_ends_with_one_final_line_of_the_shipped_models_metrics(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, workdir = demo_run
    checked_final_line(proc.stdout, Path(json.loads((workdir / "summary.json").read_text())["model_dir"]))


def test_demo_model_artifact_is_complete(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, workdir = demo_run
    summary = json.loads((workdir / "summary.json").read_text())
    model_dir = Path(summary["model_dir"])
    assert all((model_dir / name).is_file() for name in artifact.ARTIFACT_FILES)
    assert "mAP50" in summary["metrics"]


def test_demo_annotates_held_out_images_and_a_real_photo(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, workdir = demo_run
    summary = json.loads((workdir / "summary.json").read_text())
    annotated = [Path(p) for p in summary["annotated"]]
    assert len(annotated) == 3  # 2 held-out + 1 real photo
    assert all(p.is_file() and p.stat().st_size > 0 for p in annotated)
    assert summary["held_out_recall"] is not None


def test_demo_names_the_failing_step(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    manifest = tmp_path / "labels" / "output.manifest"
    manifest.write_text("not a manifest\n")  # exists (the command line is fine), but data prep cannot use it
    cmd = [
        sys.executable, "-m", "scripts.demo", "--workdir", str(tmp_path / "work"),
        "--manifest", str(manifest), "--image-root", str(tmp_path / "labels"), "--no-synth",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "DEMO FAILED at step 2/6 data prep" in proc.stdout


def test_demo_prints_the_champion_comparison_block(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Issue 27: a second run with the first run's artifact as its champion channel; the comparison block printed."""
    proc, workdir = demo_run
    card = artifact.read_model_card(workdir / "opt_ml_challenger" / "model")
    assert card.comparison is not None and card.comparison.status == "compared", card.comparison
    assert "comparison: compared" in proc.stdout
    assert f"verdict:   {card.comparison.verdict}" in proc.stdout
    assert all(
        (workdir / "opt_ml_challenger" / "model" / p).is_file() for p in card.comparison.reports.values()
    )


def test_demo_replays_its_traffic_through_challenger_and_champion(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Issue 27: the requests the demo sent, written as data capture, replayed by `release compare --capture`."""
    proc, workdir = demo_run
    assert "release compare" in proc.stdout
    report = json.loads((workdir / "replay" / "replay.json").read_text())
    assert report["requests"] == 3  # two held-out images and the real photo (as JSON)
    assert 0.0 <= report["overall"]["agreement"] <= 1.0
