"""The champion comparison (issue 27, training side): real training runs of the entrypoint with a 'champion' channel.

The champion is the session's trained artifact (tests/fixtures/artifacts.py: tiny_dataset, 2 epochs). Two
challengers are trained here with the same settings and start (int8 off, to save time): one on the same data - the same
deterministic training, so the same model: not worse - and one whose training labels lost every triangle: worse,
naming 'triangle'. 8 val images hold 4 triangles, hence champion_min_class_instances=3 (the default 10 would call
every class underpowered). Other cases (no champion, class lists that differ, a corrupt champion) reuse the session
artifact without training.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from app.contracts.artifact import MODEL_JSON, MODEL_ONNX, read_model_card
from app.contracts.comparison import Comparison
from app.contracts.hyperparameters import HyperparameterError, parse_hyperparameters
from app.contracts.metrics import (
    BY_KEY,
    MAX_METRIC_DEFINITIONS,
    METRIC_DEFINITIONS,
    MODEL_METRICS,
    is_comparison_line,
    parse_comparison_line,
)
from app.training.comparison import NO_CHAMPION, champion_view, compare_step, restrict
from app.training.dataset_check import check_dataset
from app.training.evaluation import ImageStats
from app.training.run import first_val_image
from tests.fixtures.artifacts import (
    FAST_HYPERPARAMETERS,
    TrainingRun,
    champion_tarball,
    make_opt_ml,
    pretrained_checkpoint,
    run_training,
)

CHAMPION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/yolo-detector-dev/3"
CHAMPION_DATA = "s3://example-bucket/training/yolo-20270101/output/model.tar.gz"
CHALLENGER: dict[str, str] = {
    **FAST_HYPERPARAMETERS,
    "int8": "false",
    "champion_min_class_instances": "3",
    "champion_version": CHAMPION_ARN,
    "champion_model_data": CHAMPION_DATA,
}
TRIANGLE = "2"  # tiny_dataset's class id of 'triangle'


def _data_yaml(run: TrainingRun) -> Path:
    return run.opt_ml / "output" / "work" / "data.yaml"


def _comparison(model_dir: Path) -> Comparison:
    comparison = read_model_card(model_dir).comparison
    assert comparison is not None
    return comparison


@pytest.fixture(scope="module")
def champion_tar(tmp_path_factory: pytest.TempPathFactory, trained_artifact: Path) -> Path:
    return champion_tarball(trained_artifact, tmp_path_factory.mktemp("champion") / "model.tar.gz")


def _challenger(root: Path, dataset: Path, champion: Path) -> TrainingRun:
    opt_ml = make_opt_ml(
        root,
        dataset=dataset,
        pretrained=pretrained_checkpoint(),
        hyperparameters=CHALLENGER,
        champion=champion,
    )
    run = run_training(opt_ml)
    assert run.returncode == 0, f"{run.failure}\n{run.output[-3000:]}"
    return run


@pytest.fixture(scope="module")
def same_challenger(
    tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path, champion_tar: Path
) -> TrainingRun:
    return _challenger(tmp_path_factory.mktemp("same"), tiny_dataset, champion_tar)


@pytest.fixture(scope="module")
def lost_triangles(
    tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path, champion_tar: Path
) -> TrainingRun:
    """A challenger whose training labels lost every triangle (its val labels and class list are the champion's)."""
    dataset = tmp_path_factory.mktemp("lost") / "dataset"
    shutil.copytree(tiny_dataset, dataset)
    for label in (dataset / "labels" / "train").glob("*.txt"):
        kept = [line for line in label.read_text().splitlines() if line.split()[0] != TRIANGLE]
        label.write_text("".join(f"{line}\n" for line in kept))
    return _challenger(tmp_path_factory.mktemp("lost-run"), dataset, champion_tar)


def test_a_challenger_that_lost_a_class_is_worse_naming_it(lost_triangles: TrainingRun) -> None:
    comparison = _comparison(lost_triangles.model_dir)
    assert comparison.status == "compared", comparison.reason
    assert comparison.verdict == "worse"
    assert "triangle" in comparison.worse_classes, comparison.why
    assert "'triangle'" in comparison.why and "\n" not in comparison.why
    triangle = comparison.classes["triangle"]
    assert triangle.ci_low < -0.05 and triangle.candidate < triangle.champion
    assert comparison.champion is not None
    assert (comparison.champion.version, comparison.champion.model_data) == (CHAMPION_ARN, CHAMPION_DATA)
    assert comparison.images == 8 and comparison.resamples == 500
    assert comparison.imgsz == {"candidate": 160, "champion": 160}
    for path in comparison.reports.values():  # the PNG report, inside the artifact
        assert (lost_triangles.model_dir / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(comparison.reports) == {"pr_curves", "confusion_matrices"}
    # one metric line, before the final line, that SageMaker's MetricDefinitions read
    lines = [line for line in lost_triangles.output.splitlines() if is_comparison_line(line)]
    assert len(lines) == 1
    values = parse_comparison_line(lines[0]) or {}
    assert values["comparison:verdict"] == -1
    assert values["comparison:worse_classes"] == len(comparison.worse_classes)
    assert values["comparison:mAP50-95_difference"] == pytest.approx(comparison.overall.difference)  # type: ignore[union-attr]


def test_the_same_challenger_without_the_loss_is_not_worse(same_challenger: TrainingRun) -> None:
    comparison = _comparison(same_challenger.model_dir)
    assert comparison.status == "compared", comparison.reason
    assert comparison.verdict in {"better", "not_worse"}, comparison.why
    assert comparison.worse_classes == [] and comparison.new_classes == comparison.gone_classes == []
    assert set(comparison.classes) == {"circle", "square", "triangle"}


def test_no_champion_channel_says_so(trained_run: TrainingRun) -> None:
    comparison = _comparison(trained_run.model_dir)
    assert (comparison.status, comparison.reason, comparison.verdict) == ("no_champion", NO_CHAMPION, None)
    assert not any(is_comparison_line(line) for line in trained_run.output.splitlines())


def _candidate(trained_artifact: Path, tmp_path: Path) -> Path:
    """A copy of the session artifact to write reports into."""
    return Path(shutil.copytree(trained_artifact, tmp_path / "candidate"))


def test_class_lists_that_differ_compare_the_shared_classes_by_name(
    trained_run: TrainingRun, tmp_path: Path
) -> None:
    """The champion is the same network whose third class is called 'hexagon': circle and square are shared (and
    score the same), triangle is new, hexagon gone."""
    champion = Path(shutil.copytree(trained_run.model_dir, tmp_path / "champion"))
    card = json.loads((champion / MODEL_JSON).read_text())
    card["class_names"] = ["circle", "square", "hexagon"]
    (champion / MODEL_JSON).write_text(json.dumps(card))
    hp = parse_hyperparameters({**CHALLENGER, "champion_version": "", "champion_model_data": ""})
    comparison = compare_step(
        model_dir=_candidate(trained_run.model_dir, tmp_path),
        candidate_names=["circle", "square", "triangle"],
        imgsz=160,
        data_yaml=_data_yaml(trained_run),
        channel=champion,  # an untarred channel (a local run) is read too
        hp=hp,
        workdir=tmp_path,
        log=lambda _: None,
    )
    assert comparison.status == "compared", comparison.reason
    assert (comparison.new_classes, comparison.gone_classes) == (["triangle"], ["hexagon"])
    assert set(comparison.classes) == {"circle", "square"}
    assert all(d.difference == 0 for d in comparison.classes.values())
    assert "new: triangle" in comparison.why and "gone: hexagon" in comparison.why
    assert comparison.champion is not None and comparison.champion.version == card["version"]


def test_the_champion_view_relabels_val_by_class_name(tmp_path: Path) -> None:
    """Candidate ids -> champion ids by name; labels of a class the champion lacks are left out."""
    root = tmp_path / "data"
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "images" / "val" / "a.png").write_bytes(b"png")
    (root / "labels" / "val" / "a.txt").write_text(
        "0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n2 0.7 0.7 0.1 0.1\n"
    )
    data = tmp_path / "data.yaml"
    data.write_text(
        json.dumps({"path": str(root), "val": "images/val", "names": {0: "sq", 1: "ci", 2: "tr"}})
    )
    view = champion_view(data, ["ci", "hexagon", "sq"], ["sq", "ci", "tr"], tmp_path / "view")
    assert (view.parent / "labels" / "val" / "a.txt").read_text() == "2 0.5 0.5 0.1 0.1\n0 0.2 0.2 0.1 0.1\n"
    assert (view.parent / "images" / "val" / "a.png").resolve() == (
        root / "images" / "val" / "a.png"
    ).resolve()


def test_restrict_keeps_and_renumbers_the_shared_classes() -> None:
    import numpy as np

    image = ImageStats(
        name="a.png",
        tp=np.array([[True] * 10, [False] * 10, [True] * 10]),
        conf=np.array([0.9, 0.8, 0.7]),
        pred_cls=np.array([0.0, 1.0, 2.0]),
        target_cls=np.array([2.0, 1.0]),
        pred_area=np.array([1.0, 2.0, 3.0]),
        target_area=np.array([4.0, 5.0]),
    )
    (out,) = restrict([image], {2: 0, 0: 1})
    assert out.pred_cls.tolist() == [1.0, 0.0] and out.conf.tolist() == [0.9, 0.7]
    assert out.target_cls.tolist() == [0.0] and out.target_area.tolist() == [4.0]


def test_a_corrupt_champion_fails_the_comparison_and_the_model_ships(
    trained_run: TrainingRun, tmp_path: Path
) -> None:
    """The real packaging path (write_artifact: export, ONNX check, comparison, model.json) with a champion channel
    whose model.tar.gz is not a tar: comparison 'failed' with the reason, the artifact complete."""
    from app.training.artifact import write_artifact

    channel = tmp_path / "champion"
    channel.mkdir()
    (channel / "model.tar.gz").write_bytes(b"not a tar at all")
    dataset_dir = trained_run.opt_ml / "input" / "data" / "dataset"
    card = read_model_card(trained_run.model_dir)
    model_dir = tmp_path / "model"
    shipped = write_artifact(
        model_dir=model_dir,
        # a copy: the ONNX export writes next to the weights and moves the file into model_dir, which would take
        # the session artifact's own model.onnx away from every later test
        weights=Path(shutil.copy(trained_run.model_dir / "model.pt", tmp_path / "model.pt")),
        results=pd.read_csv(trained_run.model_dir / "results.csv"),
        metrics={BY_KEY[m.key].column: card.metrics[m.key] for m in MODEL_METRICS},
        dataset=check_dataset(dataset_dir),
        hyperparameters=parse_hyperparameters(CHALLENGER),
        training={},
        sample_image=first_val_image(dataset_dir),
        data_yaml=_data_yaml(trained_run),
        job_name=None,
        champion=channel,
    )
    comparison = _comparison(model_dir)
    assert shipped.comparison == comparison and (model_dir / MODEL_ONNX).is_file()
    assert comparison.status == "failed" and comparison.verdict is None
    assert "model.tar.gz: not a readable model.tar.gz" in comparison.reason


def test_a_champion_whose_onnx_is_broken_fails_the_comparison_without_raising(
    trained_run: TrainingRun, tmp_path: Path
) -> None:
    broken = Path(shutil.copytree(trained_run.model_dir, tmp_path / "broken"))
    (broken / MODEL_ONNX).write_bytes(b"\x08\x07garbage")
    comparison = compare_step(
        model_dir=_candidate(trained_run.model_dir, tmp_path),
        candidate_names=["circle", "square", "triangle"],
        imgsz=160,
        data_yaml=_data_yaml(trained_run),
        channel=champion_tarball(broken, tmp_path / "channel" / "model.tar.gz").parent,
        hp=parse_hyperparameters(CHALLENGER),
        workdir=tmp_path,
        log=lambda _: None,
    )
    assert comparison.status == "failed" and comparison.reason, comparison
    assert comparison.champion is not None and comparison.champion.version == CHAMPION_ARN


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("champion_confidence", "1", "less than 1"),
        ("champion_map_drop_tolerance", "-0.1", "greater than or equal to 0"),
        ("champion_min_class_instances", "0", "greater than or equal to 1"),
        ("champion_model_data", "https://example.com/model.tar.gz", "should match pattern"),
    ],
)
def test_champion_hyperparameters_are_validated(name: str, value: str, expected: str) -> None:
    with pytest.raises(HyperparameterError, match=rf"hyperparameter '{name}'={value!r}: .*{expected}"):
        parse_hyperparameters({name: value})


def test_champion_hyperparameter_defaults() -> None:
    hp = parse_hyperparameters({})
    assert (
        hp.champion_map_drop_tolerance,
        hp.champion_class_drop_tolerance,
        hp.champion_min_class_instances,
        hp.champion_confidence,
        hp.champion_version,
        hp.champion_model_data,
    ) == (0.01, 0.05, 10, 0.95, "", "")


def test_the_comparison_metrics_fit_sagemakers_metric_definitions() -> None:
    assert len(METRIC_DEFINITIONS) <= MAX_METRIC_DEFINITIONS
    line = "[metrics] comparison comparison_verdict=nan comparison_difference=-0.1 comparison_ci_low=-0.2 "
    values = parse_comparison_line(line + "comparison_ci_high=0.01 comparison_worse_classes=2") or {}
    assert "comparison:verdict" not in values  # a failed comparison: no number, no metric
    assert values["comparison:mAP50-95_ci_low"] == -0.2 and values["comparison:worse_classes"] == 2
    assert not math.isnan(values["comparison:mAP50-95_difference"])
