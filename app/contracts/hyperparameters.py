"""Training hyperparameters: ultralytics' own argument names plus a few of ours (documented in OUR_ADDITIONS).

SageMaker writes ``hyperparameters.json`` with every value as a string (the SageMaker Python SDK also JSON-encodes
them, so ``"\\"yolov8n.yaml\\""`` appears too). ``parse_hyperparameters`` turns that into a typed, validated object;
an unknown or invalid name fails with the name and what was expected. The launcher validates operator overrides with
the same model before any AWS call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.contracts.errors import ContractError


class HyperparameterError(ContractError):
    """An unknown or invalid hyperparameter."""


class Hyperparameters(BaseModel):
    """Typed training hyperparameters. Defaults suit a transfer-learning run on one GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- ultralytics names (passed through to YOLO.train) ---
    epochs: int = Field(100, ge=1, le=10_000)
    imgsz: int = Field(640, ge=32, le=4096, multiple_of=32)
    batch: int = Field(16, ge=-1, description="-1 = ultralytics AutoBatch")
    nbs: int = Field(64, ge=1, description="nominal batch size: gradients accumulate over batches up to it")
    lr0: float = Field(0.01, gt=0, le=1)
    lrf: float = Field(0.01, gt=0, le=1)
    momentum: float = Field(0.937, ge=0, le=1)
    weight_decay: float = Field(0.0005, ge=0, le=0.1)
    warmup_epochs: float = Field(3.0, ge=0)
    optimizer: Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"] = "auto"
    cos_lr: bool = False
    patience: int = Field(50, ge=0, description="epochs without val fitness improvement before early stop")
    freeze: int | None = Field(None, ge=0, description="freeze the first N layers (transfer learning)")
    seed: int = Field(0, ge=0)
    deterministic: bool = True
    device: str = Field("", description="'' = all GPUs of the instance (DDP if several), else CPU")
    workers: int = Field(8, ge=0, le=64)
    cache: Literal["false", "ram", "disk"] = "false"
    amp: bool = True
    close_mosaic: int = Field(10, ge=0)
    mosaic: float = Field(1.0, ge=0, le=1)
    mixup: float = Field(0.0, ge=0, le=1)
    degrees: float = Field(0.0, ge=-180, le=180)
    translate: float = Field(0.1, ge=0, le=1)
    scale: float = Field(0.5, ge=0, le=1)
    fliplr: float = Field(0.5, ge=0, le=1)
    hsv_h: float = Field(0.015, ge=0, le=1)
    hsv_s: float = Field(0.7, ge=0, le=1)
    hsv_v: float = Field(0.4, ge=0, le=1)

    # --- our additions (see OUR_ADDITIONS) ---
    model: str = Field("yolov8n.yaml", min_length=1)
    overfit_patience: int = Field(0, ge=0)
    onnx_opset: int = Field(17, ge=11, le=22)
    name: str = Field("yolo-detector", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    int8: bool = True
    int8_max_map_drop: float = Field(0.01, ge=0, le=1)
    int8_calibration_images: int = Field(64, ge=1, le=2048)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_bool(cls, value: Any) -> Any:
        if isinstance(value, bool) or str(value).lower() in {"true", "false"}:
            return "ram" if str(value).lower() == "true" else "false"
        return value

    @field_validator("freeze", mode="before")
    @classmethod
    def _freeze_none(cls, value: Any) -> Any:
        return None if value in ("", "none", "None", "null") else value


OUR_ADDITIONS: dict[str, str] = {
    "model": "model yaml or checkpoint name, used only when no 'pretrained' channel is given "
    "(offline: a .pt must be baked into the image)",
    "overfit_patience": "stop when val loss rose for N consecutive epochs while train loss kept falling (0 = off)",
    "onnx_opset": "ONNX opset used for model.onnx",
    "name": "model name written to model.json (and used by serving in responses)",
    "int8": "also ship model.int8.onnx (ONNX Runtime static quantization) when it passes the accuracy gate",
    "int8_max_map_drop": "the gate: largest allowed absolute val mAP50-95 drop of int8 vs fp32 (0.01 = 1 point)",
    "int8_calibration_images": "training images used to calibrate the int8 model",
}


def _decode(value: Any) -> Any:
    """SageMaker gives strings; the SageMaker SDK JSON-encodes them. Undo the JSON layer when there is one."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if not isinstance(decoded, dict | list) else value
    return value


def parse_hyperparameters(raw: Mapping[str, Any], *, source: str = "hyperparameters") -> Hyperparameters:
    """Validate a mapping of (usually string) values; raise HyperparameterError naming the field."""
    known = set(Hyperparameters.model_fields)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise HyperparameterError(
            f"{source}: unknown hyperparameter(s) {unknown}; expected ultralytics names such as epochs, imgsz, "
            f"batch, lr0, patience, freeze, seed, device, workers, cache, or ours: {sorted(OUR_ADDITIONS)}"
        )
    try:
        return Hyperparameters.model_validate({k: _decode(v) for k, v in raw.items()})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise HyperparameterError(
            f"{source}: hyperparameter '{field}'={raw.get(field)!r}: {first['msg']}"
        ) from None


def to_sagemaker(params: Mapping[str, Any]) -> dict[str, str]:
    """Render hyperparameters the way SageMaker wants them (string values), for CreateTrainingJob."""
    out: dict[str, str] = {}
    for key, value in params.items():
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
