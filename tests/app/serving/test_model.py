"""Artifact checks at load: an artifact that cannot be served is refused with the file and the expectation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.contracts.artifact import ArtifactError
from app.serving.model import Detector


@pytest.fixture()
def artifact_copy(trained_artifact: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    for name in ("model.onnx", "model.json"):
        shutil.copyfile(trained_artifact / name, target / name)
    return target


def test_trained_artifact_loads_with_its_card(detector: Detector, trained_artifact: Path) -> None:
    card = json.loads((trained_artifact / "model.json").read_text())
    assert detector.class_names == card["class_names"] and detector.imgsz == card["imgsz"]
    assert detector.providers == ["CPUExecutionProvider"]


def test_missing_model_onnx_is_refused(artifact_copy: Path) -> None:
    (artifact_copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"model\.onnx: missing"):
        Detector.load(artifact_copy, device="cpu")


def test_missing_model_json_is_refused(artifact_copy: Path) -> None:
    (artifact_copy / "model.json").unlink()
    with pytest.raises(ArtifactError, match=r"model\.json: missing"):
        Detector.load(artifact_copy, device="cpu")


def test_class_count_mismatching_the_graph_is_refused(artifact_copy: Path) -> None:
    card = json.loads((artifact_copy / "model.json").read_text())
    nc = len(card["class_names"])
    card["class_names"].append("extra")
    card["export"]["output_shape"][1] += 1  # the card agrees with itself, not with the graph
    (artifact_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match=rf"{4 + nc} rows; model.json lists {nc + 1} classes"):
        Detector.load(artifact_copy, device="cpu")


def test_corrupt_model_onnx_is_refused(artifact_copy: Path) -> None:
    (artifact_copy / "model.onnx").write_bytes(b"\x08\x07 not a protobuf")
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load it"):
        Detector.load(artifact_copy, device="cpu")


def test_graph_with_embedded_nms_is_refused(artifact_copy: Path) -> None:
    card = json.loads((artifact_copy / "model.json").read_text())
    card["export"]["nms_embedded"] = True
    (artifact_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="nms_embedded"):
        Detector.load(artifact_copy, device="cpu")


def test_int8_precision_serves_the_int8_graph(trained_artifact: Path) -> None:
    detector = Detector.load(trained_artifact, device="cpu", precision="int8")
    assert detector.path.name == "model.int8.onnx"


def test_int8_precision_without_an_int8_model_is_refused_not_served_as_fp32(artifact_copy: Path) -> None:
    card = json.loads((artifact_copy / "model.json").read_text())
    card["int8"] = None  # an artifact trained with int8=false
    (artifact_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(
        ArtifactError, match=r"SERVING_PRECISION=int8 but this artifact ships only \['fp32'\]"
    ):
        Detector.load(artifact_copy, device="cpu", precision="int8")


def test_a_rejected_int8_model_is_refused_with_the_gates_reason(artifact_copy: Path) -> None:
    card = json.loads((artifact_copy / "model.json").read_text())
    assert card["int8"] is not None
    card["int8"].update(
        shipped=False, status="rejected", file=None, reason="rejected: mAP50-95 drop 0.7 > 0.01"
    )
    (artifact_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match=r"rejected: mAP50-95 drop 0.7 > 0.01"):
        Detector.load(artifact_copy, device="cpu", precision="int8")
