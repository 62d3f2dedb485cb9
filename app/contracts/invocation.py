"""``/invocations`` contract: request options, response body and error body.

Request: ``image/jpeg`` (or ``image/jpg``) | ``image/png`` | ``image/webp`` | ``application/x-image`` (raw bytes,
one image) or ``application/json`` (``{"image": "<base64>"}`` or ``{"images": ["<base64>", ...]}``). The response is
JSON: an ``Accept`` header must allow ``application/json`` (or ``*/*``), else 406. Options ``conf``, ``iou``, ``max_det`` come in the
JSON body or in the ``X-Amzn-SageMaker-Custom-Attributes`` header (``conf=0.3,iou=0.5``).
Errors: ``{"error": {"code": "...", "message": "..."}}`` with the status in ERROR_STATUS. A 500 means a bug.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

RAW_IMAGE_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/jpg",
    "image/png",
    "image/webp",
    "application/x-image",
)
JSON_TYPE = "application/json"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time payload limit

# Requests the platform sends itself (bake load, verify, its load smoke, scripts/loadtest.py on an endpoint) carry an
# InferenceId starting with this prefix. InvokeEndpoint's InferenceId "is added to the captured data when you enable
# data capture on the endpoint" (SageMaker Runtime API Reference, InvokeEndpoint,
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html, read 2026-12-05): whoever
# reads the capture (``release compare``) drops them and counts them.
SYNTHETIC_INFERENCE_ID_PREFIX = "synthetic-"


def synthetic_inference_id(sender: str) -> str:
    """The InferenceId of a synthetic request sent by ``sender`` (e.g. ``verify``)."""
    return SYNTHETIC_INFERENCE_ID_PREFIX + sender


def is_synthetic(inference_id: str | None) -> bool:
    return bool(inference_id) and str(inference_id).startswith(SYNTHETIC_INFERENCE_ID_PREFIX)


# error code -> HTTP status
ERROR_STATUS: dict[str, int] = {
    "bad_image": 400,
    "bad_request": 400,
    "bad_option": 400,
    "not_acceptable": 406,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "not_ready": 503,
    "overloaded": 503,
    "deadline_exceeded": 504,
    "internal_error": 500,
}


class InferenceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=1000)


class Box(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class Detection(BaseModel):
    label: str
    class_id: int
    confidence: float
    box: Box


class ImageSize(BaseModel):
    width: int
    height: int


class Prediction(BaseModel):
    image: ImageSize
    detections: list[Detection]


class ModelRef(BaseModel):
    name: str
    version: str


class InvocationResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
