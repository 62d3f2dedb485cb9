"""Model artifact contract (training -> serving).

What the training container writes to ``/opt/ml/model`` (SageMaker tars it to ``model.tar.gz``; serving finds it
untarred in ``/opt/ml/model``)::

    model.onnx    what serving runs at fp32 (see ExportInfo for its exact input/output)
    model.int8.onnx  the same network quantized to int8, present only when it passed the accuracy gate (Int8Result)
    model.pt      ultralytics checkpoint, for further fine-tuning
    model.json    ModelCard below
    results.csv   ultralytics per-epoch results
    loss.png      train vs val loss per epoch

ONNX graph (``raw`` layout, no NMS inside, so conf/iou/max_det stay per-request options):
input ``images`` float32 [1, 3, imgsz, imgsz], RGB, 0..1, letterboxed (pad value 114/255, centred);
output ``output0`` float32 [1, 4 + num_classes, num_anchors]: rows 0-3 are cx, cy, w, h in input pixels,
rows 4.. are per-class scores (already sigmoid-ed). With ``export.dynamic`` the graph also takes any height and
width that are multiples of the model's largest stride (``export.stride``: 32, or 64 for P6 models): model.json
records the nominal imgsz x imgsz shapes, and serving letterboxes each image to the smallest such canvas that holds
it at imgsz scale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.contracts.comparison import Comparison
from app.contracts.errors import ContractError

SCHEMA_VERSION = 1
MODEL_ONNX = "model.onnx"
INT8_ONNX = "model.int8.onnx"
MODEL_PT = "model.pt"
MODEL_JSON = "model.json"
RESULTS_CSV = "results.csv"
LOSS_PNG = "loss.png"
ARTIFACT_FILES: tuple[str, ...] = (MODEL_ONNX, MODEL_PT, MODEL_JSON, RESULTS_CSV, LOSS_PNG)
LETTERBOX_PAD_VALUE = 114

OutputLayout = Literal["raw_cxcywh_scores"]


class ArtifactError(ContractError):
    """A model artifact that cannot be used."""


class ExportInfo(BaseModel):
    """How ``model.onnx`` was exported: everything serving needs to feed it and read it."""

    model_config = ConfigDict(extra="allow")
    format: Literal["onnx"] = "onnx"
    opset: int
    input_name: str = "images"
    input_shape: list[int] = Field(min_length=4, max_length=4, description="[1, 3, imgsz, imgsz]")
    output_name: str = "output0"
    output_shape: list[int] = Field(min_length=3, max_length=3, description="[1, 4 + nc, anchors]")
    output_layout: OutputLayout = "raw_cxcywh_scores"
    stride: int = Field(32, ge=1, description="the model's largest detection stride (64 for P6 models)")
    nms_embedded: bool = False
    half: bool = False
    dynamic: bool = False


Precision = Literal["fp32", "int8"]
PRECISION_FILES: dict[str, str] = {"fp32": MODEL_ONNX, "int8": INT8_ONNX}


Int8Status = Literal["shipped", "rejected", "underpowered", "failed"]


class Int8Result(BaseModel):
    """The int8 step's outcome. ``status``: ``shipped`` (passed the gate), ``rejected`` (the gate measured too large a
    drop), ``underpowered`` (too little val evidence to decide: not shipped), ``failed`` (the step itself failed or
    was killed, e.g. for memory: the fp32 model ships all the same). Only ``shipped`` comes with model.int8.onnx.

    ``evaluation`` is the report per precision ({"fp32": ..., "int8": ...}: val images, instances, per-class AP50 and
    AP50-95, small/medium/large slices) and ``evidence`` what the decision rests on (bootstrap bound of the drop,
    worst class, label-free agreement); both are absent when the step failed before measuring."""

    model_config = ConfigDict(extra="allow")
    file: str | None = Field(
        description="model.int8.onnx when shipped, else None (a rejected model is not shipped)"
    )
    shipped: bool
    status: Int8Status
    reason: str
    max_map50_95_drop: float = Field(ge=0, description="the gate: largest allowed absolute mAP50-95 drop")
    max_class_drop: float | None = Field(
        None, ge=0, description="the gate: largest allowed drop of one class"
    )
    map50_95_drop: float | None = None
    fp32_onnx_metrics: dict[str, float] | None = None
    int8_onnx_metrics: dict[str, float] | None = None
    evaluation: dict[str, dict[str, object]] | None = None
    evidence: dict[str, object] | None = None
    calibration_images: int | None = Field(None, ge=1)
    calibration_method: str | None = None
    calibration_chunks: list[tuple[int, int]] | None = Field(
        None, description="image ranges calibrated per chunk"
    )
    float_nodes: int | None = Field(None, ge=0, description="detection-head nodes kept in float")
    peak_rss_mib: float | None = Field(None, ge=0, description="the int8 process's peak resident memory")
    seconds: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _status_of_older_cards(cls, data: object) -> object:
        """model.json written before ``status`` existed: shipped or rejected by the one-number gate."""
        if isinstance(data, dict) and "status" not in data and "shipped" in data:
            return {**data, "status": "shipped" if data["shipped"] else "rejected"}
        return data

    @model_validator(mode="after")
    def _file_iff_shipped(self) -> Int8Result:
        if self.shipped != (self.file == INT8_ONNX):
            raise ValueError(f"int8.file must be '{INT8_ONNX}' exactly when int8.shipped is true")
        if self.shipped != (self.status == "shipped"):
            raise ValueError("int8.status must be 'shipped' exactly when int8.shipped is true")
        return self


class ModelCard(BaseModel):
    """``model.json``: what the model is, how it was made, and how to run it."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    task: Literal["detect"] = "detect"
    class_names: list[str] = Field(min_length=1)
    imgsz: int = Field(gt=0)
    ultralytics_version: str
    dataset_version: str
    metrics: dict[str, float] = Field(default_factory=dict, description="final val metrics, e.g. mAP50-95")
    export: ExportInfo
    training: dict[str, object] = Field(default_factory=dict)
    int8: Int8Result | None = Field(None, description="None: no int8 model was attempted")
    comparison: Comparison | None = Field(
        None,
        description="the champion comparison (app/contracts/comparison.py); None: written before it existed",
    )

    def precisions(self) -> list[str]:
        """The precisions this artifact can serve."""
        return ["fp32"] + (["int8"] if self.int8 is not None and self.int8.shipped else [])

    @model_validator(mode="after")
    def _shapes_agree(self) -> ModelCard:
        nc = len(self.class_names)
        if self.export.output_shape[1] != 4 + nc:
            raise ValueError(
                f"export.output_shape[1] is {self.export.output_shape[1]}, expected 4 + {nc} classes = {4 + nc}"
            )
        if self.export.input_shape[2:] != [self.imgsz, self.imgsz]:
            raise ValueError(
                f"export.input_shape {self.export.input_shape} does not match imgsz {self.imgsz}"
            )
        return self


def read_model_card(model_dir: Path) -> ModelCard:
    """Load ``model.json`` from an artifact folder; raise ArtifactError naming the file and field."""
    path = model_dir / MODEL_JSON
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; expected the model.json written by the training container")
    try:
        return ModelCard.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ArtifactError(f"{path}: field '{field}': {first['msg']}") from None


def write_model_card(model_dir: Path, card: ModelCard) -> Path:
    path = model_dir / MODEL_JSON
    path.write_text(card.model_dump_json(indent=2) + "\n")
    return path
