"""model.json's int8 block: a failed step is a valid record with its reason, and cards written before ``status``
existed still load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.contracts.artifact import INT8_ONNX, Int8Result


def test_a_failed_step_needs_only_its_reason() -> None:
    result = Int8Result(
        file=None, shipped=False, status="failed", reason="failed: killed by SIGKILL", max_map50_95_drop=0.01,
        seconds=3.0,
    )  # fmt: skip
    assert result.fp32_onnx_metrics is None and result.evaluation is None


def test_a_card_written_before_status_existed_still_loads() -> None:
    old = {
        "file": None, "shipped": False, "reason": "rejected: ...", "max_map50_95_drop": 0.01, "map50_95_drop": 0.02,
        "fp32_onnx_metrics": {"mAP50-95": 0.5}, "int8_onnx_metrics": {"mAP50-95": 0.48}, "calibration_images": 64,
        "calibration_method": "percentile 99.99", "float_nodes": 40, "seconds": 60.0,
    }  # fmt: skip
    assert Int8Result.model_validate(old).status == "rejected"
    assert Int8Result.model_validate({**old, "shipped": True, "file": INT8_ONNX}).status == "shipped"


@pytest.mark.parametrize("status", ["rejected", "underpowered", "failed"])
def test_only_the_shipped_status_comes_with_the_file(status: str) -> None:
    with pytest.raises(ValidationError, match=r"int8\.status must be 'shipped' exactly when"):
        Int8Result(
            file=INT8_ONNX, shipped=True, status=status, reason="x", max_map50_95_drop=0.01, seconds=1.0
        )  # type: ignore[arg-type]
