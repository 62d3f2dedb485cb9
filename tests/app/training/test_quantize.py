"""INT8 as a product of training: the session's real training run quantizes its model, validates both precisions
with ultralytics' validator and ships model.int8.onnx only through the accuracy gate."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from app.contracts.artifact import INT8_ONNX, MODEL_ONNX, read_model_card
from app.contracts.dataset import IMAGES_DIR, TRAIN, VAL
from app.contracts.invocation import InferenceOptions
from app.serving import images
from app.serving.model import Detector
from app.training.dataset_check import check_dataset, write_training_yaml
from app.training.quantize import (
    CALIBRATION_CHUNK,
    QuantizationError,
    build_int8,
    float_nodes,
    output_convolutions,
)

CONFIDENT = 0.5
MATCH_IOU = 0.5  # a match as the detection metrics count one


def _iou(a: dict[str, float], b: dict[str, float]) -> float:
    w = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    h = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    inter = w * h
    area = (a["x2"] - a["x1"]) * (a["y2"] - a["y1"]) + (b["x2"] - b["x1"]) * (b["y2"] - b["y1"]) - inter
    return inter / area if area > 0 else 0.0


def test_the_artifact_records_both_precisions_and_the_gate(trained_artifact: Path) -> None:
    card = read_model_card(trained_artifact)
    assert card.int8 is not None, "training with int8=true (the default) must record the int8 result"
    result = card.int8
    assert result.fp32_onnx_metrics is not None and result.int8_onnx_metrics is not None
    assert set(result.fp32_onnx_metrics) == set(result.int8_onnx_metrics) >= {"mAP50-95", "mAP50"}
    assert result.map50_95_drop == pytest.approx(
        result.fp32_onnx_metrics["mAP50-95"] - result.int8_onnx_metrics["mAP50-95"], abs=1e-5
    )
    assert (trained_artifact / INT8_ONNX).is_file() == result.shipped
    assert result.float_nodes and result.calibration_images and result.peak_rss_mib
    # the evaluation report per precision and the evidence the decision rests on
    assert result.evaluation is not None and result.evidence is not None
    for precision in ("fp32", "int8"):
        report = result.evaluation[precision]
        assert report["images"] == 8 and report["instances"] > 0
        assert set(report["classes"]) <= set(card.class_names) and report["classes"]
        assert all({"instances", "AP50", "AP50-95"} <= set(row) for row in report["classes"].values())
        assert set(report["sizes"]) == {"small", "medium", "large"}
    evidence = result.evidence
    assert evidence["val_images"] == 8 and evidence["map50_95_drop_upper"] >= evidence["map50_95_drop"] - 1e-6
    assert 0 <= evidence["agreement"]["agreement"] <= 1 and evidence["agreement"]["images"] > 8


def test_calibration_reads_strided_chunks(trained_artifact: Path) -> None:
    """Calibration memory is bounded: ORT's strided path reads the images chunk by chunk (set_range), never
    all of them at once."""
    card = read_model_card(trained_artifact)
    assert card.int8 is not None and card.int8.calibration_chunks
    chunks = card.int8.calibration_chunks
    assert len(chunks) >= 2 and all(end - start <= CALIBRATION_CHUNK for start, end in chunks)
    assert chunks[0][0] == 0 and chunks[-1][1] == card.int8.calibration_images
    assert "strided chunks" in (card.int8.calibration_method or "")


def test_int8_detections_match_fp32_on_confident_boxes(trained_artifact: Path, tiny_dataset: Path) -> None:
    card = read_model_card(trained_artifact)
    assert card.int8 is not None and card.int8.shipped, f"the tiny model's int8 was not shipped: {card.int8}"
    fp32 = Detector.load(trained_artifact, device="cpu", precision="fp32")
    int8 = Detector.load(trained_artifact, device="cpu", precision="int8")
    assert int8.path.name == INT8_ONNX
    compared, unmatched = 0, []
    for path in sorted((tiny_dataset / IMAGES_DIR / VAL).iterdir()):
        image = images.load(path.read_bytes(), imgsz=fp32.imgsz, max_pixels=10**8, stride=fp32.stride)
        options = InferenceOptions()
        reference = fp32.predict(image, options)["detections"]
        candidates = int8.predict(image, options)["detections"]
        for box in (d for d in reference if d["confidence"] >= CONFIDENT):
            best = max(
                (_iou(box["box"], c["box"]) for c in candidates if c["class_id"] == box["class_id"]),
                default=0.0,
            )
            compared += 1
            if best < MATCH_IOU:
                unmatched.append(f"{path.name}: {box['label']} {box['confidence']} (best IoU {best:.2f})")
    assert compared >= 10, f"only {compared} confident fp32 boxes: too few to compare"
    # A 2-epoch model has boxes on the edge between two classes; int8 may tip one of them, not more.
    assert len(unmatched) <= 0.1 * compared, f"{len(unmatched)}/{compared} fp32 boxes unmatched: {unmatched}"


def test_the_gate_rejects_a_model_whose_head_is_quantized(
    trained_artifact: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copyfile(trained_artifact / MODEL_ONNX, model_dir / MODEL_ONNX)
    data_yaml = write_training_yaml(tiny_dataset, check_dataset(tiny_dataset), tmp_path / "data.yaml")
    card = read_model_card(trained_artifact)
    result = build_int8(
        model_dir=model_dir,
        fp32_name=MODEL_ONNX,
        input_name=card.export.input_name,
        imgsz=card.imgsz,
        data_yaml=data_yaml,
        class_names=card.class_names,
        calibration_folder=tiny_dataset / IMAGES_DIR / TRAIN,
        calibration_limit=16,
        max_drop=0.01,
        max_class_drop=0.05,
        min_val_images=8,
        float_head=False,
    )
    assert not result.shipped and result.file is None and result.status == "rejected"
    assert result.reason.startswith("rejected: mAP50-95 drop")
    assert not (model_dir / INT8_ONNX).exists(), "a rejected int8 model must not stay in the artifact"


def test_a_graph_without_ultralytics_node_names_is_refused(tmp_path: Path) -> None:
    node = helper.make_node("Relu", ["images"], ["output0"], name="relu")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    with pytest.raises(QuantizationError, match="not an ultralytics export"):
        float_nodes(helper.make_model(graph))


def test_the_head_stays_float_up_to_its_output_convolutions(trained_artifact: Path) -> None:
    model = onnx.load(str(trained_artifact / MODEL_ONNX))
    kept = float_nodes(model)
    head = max(
        int(n.name.split("/")[1].split(".")[1]) for n in model.graph.node if n.name.startswith("/model.")
    )
    assert kept and all(name.startswith(f"/model.{head}/") for name in kept)
    outputs = output_convolutions(model)
    # one box and one class output convolution per detection stride (3 for P3-P5), as ultralytics' int8 exports keep
    assert len(outputs) == 6 and {n.split("/")[2].split(".")[0] for n in outputs} == {"cv2", "cv3"}
    branch_convs = [
        n.name for n in model.graph.node if n.op_type == "Conv" and re.search(r"/cv[23]\.", n.name)
    ]
    assert set(branch_convs) - set(outputs), "the branches' inner convolutions are quantized"
