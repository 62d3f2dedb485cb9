"""Training hyperparameters: ultralytics' own argument names plus a few of ours (documented in OUR_ADDITIONS).

SageMaker writes ``hyperparameters.json`` with every value as a string (the SageMaker Python SDK also JSON-encodes
them, so ``"\\"yolov8n.yaml\\""`` appears too). ``parse_hyperparameters`` turns that into a typed, validated object;
an unknown or invalid name fails with the name and what was expected. The launcher validates operator overrides with
the same model before any AWS call, so settings that cannot work (an end-to-end model family, ``lr0`` with
``optimizer=auto``, AutoBatch on several GPUs) are refused in seconds, never after the GPU hours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.contracts import instance_types
from app.contracts.errors import ContractError

# The pretrained checkpoint baked into the training image (containers/train/Dockerfile, PRETRAINED_URL): what a job
# fine-tunes when the request names no other start. One definition: the Dockerfile's file name is tested against it.
BAKED_CHECKPOINT = "yolov8n.pt"

# Model families whose detection head is end-to-end (NMS-free, one-to-one matching): their exported graph's output is
# [1, max_det, 6] boxes, not the [1, 4 + nc, anchors] layout that app.contracts.artifact and serving expect.
END_TO_END_FAMILIES: dict[str, str] = {"yolo26": "YOLO26", "yolov10": "YOLOv10", "rtdetr": "RT-DETR"}


# Per-channel QuantizeLinear/DequantizeLinear (the int8 graph's weights) take their 'axis' attribute from opset 13 on:
# https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html (version 13 adds per-axis quantization).
INT8_MIN_OPSET = 13


class HyperparameterError(ContractError):
    """An unknown or invalid hyperparameter."""


def end_to_end_family(model: str) -> str | None:
    """The family name when ``model`` (a yaml or checkpoint name or path) is an end-to-end one, else None."""
    stem = model.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return next((family for prefix, family in END_TO_END_FAMILIES.items() if stem.startswith(prefix)), None)


def end_to_end_message(what: str, family: str) -> str:
    return (
        f"{what} is a {family} model: its end-to-end head exports [1, max_det, 6] boxes, not the raw "
        "[1, 4 + classes, anchors] layout this platform serves (conf/iou/max_det per request); use a YOLOv8 or "
        f"YOLO11 checkpoint or yaml (e.g. {BAKED_CHECKPOINT}, yolo11n.yaml)"
    )


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
    model: str = Field(BAKED_CHECKPOINT, min_length=1)
    overfit_patience: int = Field(0, ge=0)
    onnx_opset: int = Field(17, ge=11, le=22)
    name: str = Field("yolo-detector", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    int8: bool = True
    int8_max_map_drop: float = Field(0.01, ge=0, le=1)
    int8_max_class_drop: float = Field(0.05, ge=0, le=1)
    int8_min_val_images: int = Field(100, ge=1)
    int8_calibration_images: int = Field(64, ge=1, le=2048)
    # the champion comparison (app/contracts/comparison.py Tolerances; the stage's settings, passed by the runner)
    champion_map_drop_tolerance: float = Field(0.01, ge=0, le=1)
    champion_class_drop_tolerance: float = Field(0.05, ge=0, le=1)
    champion_min_class_instances: int = Field(10, ge=1)
    champion_confidence: float = Field(0.95, gt=0, lt=1)
    champion_version: str = Field("", description="the champion's model package ARN (set by the runner)")
    champion_model_data: str = Field("", pattern=r"^(s3://[^/\s]+/\S+)?$", description="its model.tar.gz URI")

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

    @field_validator("model")
    @classmethod
    def _not_end_to_end(cls, value: str) -> str:
        family = end_to_end_family(value)
        if family:
            raise ValueError(end_to_end_message(f"'{value}'", family))
        return value

    @model_validator(mode="after")
    def _settings_that_work(self) -> Hyperparameters:
        ignored = sorted({"lr0", "momentum"} & self.model_fields_set)
        if self.optimizer == "auto" and ignored:
            names, them = " and ".join(ignored), "them" if len(ignored) > 1 else "it"
            raise ValueError(
                f"{names} given with optimizer=auto, which ignores {them} (ultralytics then picks SGD or AdamW "
                "and sets lr0 and momentum itself from the number of iterations); set optimizer (SGD, AdamW, ...) "
                f"to use {them}, or drop {them}"
            )
        if self.int8 and self.onnx_opset < INT8_MIN_OPSET:
            raise ValueError(
                f"int8=true with onnx_opset={self.onnx_opset}: the int8 graph's per-channel QuantizeLinear/"
                f"DequantizeLinear need opset >= {INT8_MIN_OPSET} (their 'axis' attribute), opset 11/12 give an "
                f"invalid int8 graph; set onnx_opset >= {INT8_MIN_OPSET} or int8=false"
            )
        if self.batch == -1 and len(gpu_ids(self.device)) > 1:
            raise ValueError(
                f"batch=-1 (AutoBatch) with device='{self.device}': AutoBatch works on one GPU only; give a "
                "total batch size divisible by the number of GPUs (e.g. batch=32)"
            )
        return self


OUR_ADDITIONS: dict[str, str] = {
    "model": f"start of training when no 'pretrained' channel is given: a checkpoint baked into the image "
    f"(default {BAKED_CHECKPOINT}: fine-tune) or a model yaml (from scratch, only when asked)",
    "overfit_patience": "stop when val loss rose for N consecutive epochs while train loss kept falling (0 = off)",
    "onnx_opset": "ONNX opset used for model.onnx",
    "name": "model name written to model.json (and used by serving in responses)",
    "int8": "also ship model.int8.onnx (ONNX Runtime static quantization) when it passes the accuracy gate",
    "int8_max_map_drop": "the gate: largest allowed absolute val mAP50-95 drop of int8 vs fp32 (0.01 = 1 point), "
    "held by the upper bound of a paired bootstrap over val images, not by one number",
    "int8_max_class_drop": "the gate: largest allowed mAP50-95 drop of any one class (0.05 = 5 points)",
    "int8_min_val_images": "the gate: fewer val images than this is too little evidence (int8 'underpowered', not "
    "shipped)",
    "int8_calibration_images": "training images used to calibrate the int8 model",
    "champion_map_drop_tolerance": "champion comparison: the candidate is 'worse' when the lower bound of its overall "
    "mAP50-95 difference to the champion is below minus this (0.01 = 1 point)",
    "champion_class_drop_tolerance": "champion comparison: a class is 'worse' when the lower bound of its AP50-95 "
    "difference is below minus this",
    "champion_min_class_instances": "champion comparison: a class with fewer val instances is 'underpowered' (listed, "
    "never decisive)",
    "champion_confidence": "champion comparison: confidence level of the bootstrap intervals (two-sided)",
    "champion_version": "the champion's model package ARN (or training job name), set by the runner with the "
    "'champion' channel; recorded in model.json's comparison",
    "champion_model_data": "the s3:// URI of the champion's model.tar.gz, set by the runner with the 'champion' "
    "channel (the container cannot see a channel's S3 URI)",
}


_STRING_FIELDS = frozenset(
    name for name, field in Hyperparameters.model_fields.items() if field.annotation in (str, str | None)
)


def gpu_ids(device: str) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; ``""``, ``"cpu"`` and ``"mps"`` name no GPU index."""
    return [part.strip() for part in device.split(",") if part.strip().isdigit()]


def check_int8_bars(params: Hyperparameters, *, max_map_drop: float, max_class_drop: float) -> None:
    """The int8 gate's bars are the stage's to set, not the job's: a job may be stricter than the stage's caps
    (infra/config.py TrainingSettings.int8_*_cap), never looser. Raise HyperparameterError naming the bar."""
    for name, value, cap in (
        ("int8_max_map_drop", params.int8_max_map_drop, max_map_drop),
        ("int8_max_class_drop", params.int8_max_class_drop, max_class_drop),
    ):
        if params.int8 and value > cap:
            raise HyperparameterError(
                f"{name}={value:g} is above this stage's cap {cap:g} (training.{name.removeprefix('int8_')}_cap in "
                f"infra/stages.py): a job may set a stricter int8 bar, not a looser one; use {name} <= {cap:g}"
            )


def check_autobatch(params: Hyperparameters, instance_type: str) -> None:
    """AutoBatch (batch=-1) sizes the batch for one GPU; with ``device`` unset the job trains on every GPU of the
    instance (DDP when there are several), which ultralytics refuses only after setup, on the GPU instance. Raise
    HyperparameterError when ``instance_type`` has more than one GPU (instance_types.GPU_COUNTS) and the job would
    use them all. A device list of several GPUs is refused by Hyperparameters itself."""
    if params.batch != -1 or params.device:
        return
    gpus = instance_types.gpu_count(instance_type)
    if gpus is not None and gpus > 1:
        raise HyperparameterError(
            f"batch=-1 (AutoBatch) on {instance_type}, which has {gpus} GPUs: with device unset the job trains on "
            f"all {gpus} (DDP) and AutoBatch works on one GPU only; give a total batch size divisible by {gpus} "
            "(e.g. batch=32), or device=0 to train on one GPU"
        )


def _decode(value: Any, *, string: bool = False) -> Any:
    """SageMaker gives strings; the SageMaker SDK JSON-encodes them. Undo the JSON layer when there is one.

    A string field keeps its value unless the JSON layer holds a string: ``"0"`` stays ``"0"`` for ``device``
    (a GPU index) and ``"2026"`` for ``name``, where decoding would make them numbers."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        if string:
            return decoded if isinstance(decoded, str) else value
        return decoded if not isinstance(decoded, dict | list) else value
    if string and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # an operator's {"device": 0}
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
        return Hyperparameters.model_validate(
            {k: _decode(v, string=k in _STRING_FIELDS) for k, v in raw.items()}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if not field:  # a rule across fields: the message names them
            raise HyperparameterError(f"{source}: {first['msg'].removeprefix('Value error, ')}") from None
        raise HyperparameterError(
            f"{source}: hyperparameter '{field}'={raw.get(field)!r}: {first['msg']}"
        ) from None


def to_sagemaker(params: Mapping[str, Any]) -> dict[str, str]:
    """Render hyperparameters the way SageMaker wants them (string values), for CreateTrainingJob."""
    out: dict[str, str] = {}
    for key, value in params.items():
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
