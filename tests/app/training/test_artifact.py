"""The session's real training run (tests/fixtures/artifacts.py: 2 epochs, CPU) wrote a contract-exact artifact."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from PIL import Image

from app.contracts.artifact import ARTIFACT_FILES, ArtifactError, ExportInfo, read_model_card
from app.contracts.dataset import read_dataset_info
from app.contracts.metrics import (
    FIELDS,
    KEYS,
    METRICS,
    MetricNameError,
    is_epoch_line,
    parse_epoch_line,
)
from app.training.artifact import check_onnx
from app.training.run import final_values
from tests.fixtures.artifacts import TrainingRun, checked_final_line

pytestmark = pytest.mark.slow


def test_training_exits_zero_without_failure_file(trained_run: TrainingRun) -> None:
    assert trained_run.returncode == 0
    assert trained_run.failure is None


@pytest.mark.parametrize("name", ARTIFACT_FILES)
def test_artifact_file_is_present_and_not_empty(trained_artifact: Path, name: str) -> None:
    assert (trained_artifact / name).stat().st_size > 0


def test_model_card_class_names_match_dataset_in_id_order(trained_artifact: Path, tiny_dataset: Path) -> None:
    card = read_model_card(trained_artifact)
    info = read_dataset_info(tiny_dataset)
    assert card.class_names == info.class_names
    assert card.dataset_version == info.version


def test_model_card_records_export_and_final_metrics(trained_artifact: Path) -> None:
    card = read_model_card(trained_artifact)
    assert card.export.nms_embedded is False
    assert card.export.opset == 17
    assert card.export.input_shape == [1, 3, 160, 160]
    assert set(card.metrics) == {"precision", "recall", "mAP50", "mAP50-95"}
    assert card.training["epochs_run"] == 2


def test_onnx_runs_in_onnxruntime_with_the_shape_the_card_promises(
    trained_artifact: Path, tiny_dataset: Path
) -> None:
    card = read_model_card(trained_artifact)
    session = ort.InferenceSession(str(trained_artifact / "model.onnx"), providers=["CPUExecutionProvider"])
    image = next((tiny_dataset / "images" / "val").iterdir())
    pixels = (
        np.asarray(Image.open(image).convert("RGB").resize((card.imgsz, card.imgsz)), dtype=np.float32) / 255
    )
    (output,) = session.run(
        [card.export.output_name], {card.export.input_name: pixels.transpose(2, 0, 1)[None]}
    )
    # 160 px: strides 8/16/32 -> 20*20 + 10*10 + 5*5 anchors; rows = 4 box coords + one score per class
    assert list(output.shape) == card.export.output_shape == [1, 4 + 3, 525]
    assert np.all((output[0, 4:] >= 0) & (output[0, 4:] <= 1))


def test_onnx_takes_any_stride_multiple_height_and_width(trained_artifact: Path) -> None:
    """Exported with dynamic height/width: serving letterboxes 4:3 photos to 160x128, not 160x160."""
    card = read_model_card(trained_artifact)
    assert card.export.dynamic is True
    session = ort.InferenceSession(str(trained_artifact / "model.onnx"), providers=["CPUExecutionProvider"])
    pixels = np.full((1, 3, 128, 160), 114 / 255, dtype=np.float32)
    (output,) = session.run([card.export.output_name], {card.export.input_name: pixels})
    # strides 8/16/32 over 128 x 160: 16*20 + 8*10 + 4*5 anchors
    assert list(output.shape) == [1, 4 + 3, 420]


def test_one_metric_line_per_epoch_parsed_by_the_metric_definitions(trained_run: TrainingRun) -> None:
    lines = [line for line in trained_run.output.splitlines() if is_epoch_line(line)]
    assert [parse_epoch_line(line)["epoch"] for line in lines] == [1.0, 2.0]  # type: ignore[index]
    for line in lines:
        assert set(parse_epoch_line(line) or {}) == {"epoch", *(f"{s}" for s in _names())}


def _names() -> list[str]:
    return [name for key, name in FIELDS if key in KEYS]


def test_last_metric_line_is_the_final_one_with_the_shipped_models_metrics(trained_run: TrainingRun) -> None:
    checked_final_line(trained_run.output, trained_run.model_dir)
    assert read_model_card(trained_run.model_dir).training["weights"] == "best.pt"


def test_transfer_from_pretrained_reports_adapted_class_head(trained_run: TrainingRun) -> None:
    card = read_model_card(trained_run.model_dir)
    transfer = card.training["transfer"]
    assert isinstance(transfer, dict)
    assert (transfer["source_classes"], transfer["target_classes"]) == (2, 3)
    assert 0 < transfer["transferred"] < transfer["total"]
    assert "[transfer]" in trained_run.output and "class head adapted 2 -> 3" in trained_run.output


def test_model_json_records_the_starting_checkpoint_name_and_sha256(trained_run: TrainingRun) -> None:
    from tests.fixtures.artifacts import pretrained_checkpoint

    start = read_model_card(trained_run.model_dir).training["start"]
    digest = hashlib.sha256(pretrained_checkpoint().read_bytes()).hexdigest()
    assert start == {"name": "best.pt", "sha256": digest, "source": "pretrained channel"}


def test_model_onnx_was_test_run_with_onnx_runtime_before_shipping(trained_run: TrainingRun) -> None:
    check = read_model_card(trained_run.model_dir).training["onnx_check"]
    assert isinstance(check, dict)
    assert check["output_shape"][:2] == [1, 4 + 3] and check["onnxruntime"] == ort.__version__


def _export(trained_artifact: Path) -> ExportInfo:
    return read_model_card(trained_artifact).export


def test_onnx_check_refuses_a_graph_onnx_runtime_cannot_load(
    trained_artifact: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes((trained_artifact / "model.onnx").read_bytes()[:5000])  # a torn export
    sample = next((tiny_dataset / "images" / "val").iterdir())
    with pytest.raises(
        ArtifactError, match=r"model.onnx: ONNX Runtime .* cannot run it on validation image .*not shipped"
    ):
        check_onnx(broken, _export(trained_artifact), classes=3, sample=sample)


def test_onnx_check_refuses_a_graph_whose_output_is_not_the_raw_layout_for_the_classes(
    trained_artifact: Path, tiny_dataset: Path
) -> None:
    sample = next((tiny_dataset / "images" / "val").iterdir())
    with pytest.raises(ArtifactError, match=r"serving expects \[1, 4 \+ 5 classes = 9, anchors\]"):
        check_onnx(trained_artifact / "model.onnx", _export(trained_artifact), classes=5, sample=sample)


def test_every_ultralytics_name_of_the_metric_table_is_a_column_of_the_real_results(
    trained_artifact: Path,
) -> None:
    columns = set(pd.read_csv(trained_artifact / "results.csv").columns)
    assert {m.column for m in METRICS} <= columns


def test_final_line_refuses_results_whose_loss_column_was_renamed(trained_artifact: Path) -> None:
    results = pd.read_csv(trained_artifact / "results.csv")
    card = read_model_card(trained_artifact)
    assert final_values(card.metrics, results, 1)["val_dfl_loss"] == results["val/dfl_loss"].iloc[0]
    renamed = results.rename(columns={"val/dfl_loss": "val/distribution_loss"})
    with pytest.raises(MetricNameError, match=re.escape("results.csv row of epoch 1: no ['val/dfl_loss']")):
        final_values(card.metrics, renamed, 1)
