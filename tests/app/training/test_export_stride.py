"""The model's largest stride comes from the model, not a constant: a P6 (stride 64) export passes the pre-ship ONNX
check on a non-square image, and an imgsz the model cannot take is refused before training."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.contracts.artifact import MODEL_ONNX
from app.training.artifact import check_onnx, export_onnx
from app.training.weights import WeightsError, check_imgsz

P6 = "yolov8n-p6.yaml"


def test_a_p6_export_passes_the_onnx_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ultralytics exports a yaml-built model next to the working directory
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    export = export_onnx(Path(P6), model_dir, imgsz=128, opset=17)
    assert export.stride == 64 and export.output_shape == [1, 84, 16**2 + 8**2 + 4**2 + 2**2]
    sample = tmp_path / "wide.jpg"  # 4:3, so the dynamic canvas is 128 x 96 at stride 32, 128 x 128 at 64
    cv2.imwrite(str(sample), np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    checked = check_onnx(model_dir / MODEL_ONNX, export, classes=80, sample=sample)
    assert checked["input_shape"] == [1, 3, 128, 128]


def test_an_imgsz_that_is_not_a_multiple_of_the_largest_stride_is_refused() -> None:
    assert check_imgsz(128, P6) == 64
    with pytest.raises(
        WeightsError, match=r"'imgsz'=160: not a multiple of yolov8n-p6.yaml's largest stride 64"
    ):
        check_imgsz(160, P6)
    assert check_imgsz(160, "yolov8n.yaml") == 32
