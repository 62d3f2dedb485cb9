"""What triggers a training job: an operator request or an EventBridge S3 "Object Created" event for a dataset.json.

``parse_event`` turns either into one ``TrainingRequest`` (what to train; the runner's only meaning of "request").
Everything here is pure (no AWS call), so a bad payload is rejected before the runner touches SageMaker; every error
names the field and what was expected. ``training_job.py`` turns a request into the CreateTrainingJob parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from app.contracts import instance_types
from app.contracts.dataset import DATASET_JSON
from app.contracts.errors import ContractError

Trigger = Literal["operator", "dataset-event"]
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
# 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit (Amazon S3 User Guide,
# "General purpose bucket naming rules", https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html,
# read 2026-11-30).
S3_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_S3_URI = rf"^s3://{S3_BUCKET}/[^\s]*$"
HyperparameterValue = StrictStr | StrictInt | StrictFloat | StrictBool


class RequestError(ContractError):
    """A request the runner will not start: retrying it cannot help; the operator must change it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field '{field}': {message}")
        self.field = field


class TrainingRequest(BaseModel):
    """What to train: an operator's request, or one built from a dataset event. Only ``dataset_uri`` is required;
    everything else overrides the stage config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_uri: str = Field(pattern=_S3_URI, description="s3://<datasets bucket>/<dataset prefix>/")
    hyperparameters: dict[str, HyperparameterValue] = Field(default_factory=dict)
    instance_type: str | None = None
    instance_count: instance_types.TrainingInstanceCount | None = None
    volume_size_gb: int | None = Field(None, ge=5, le=16384)
    use_spot: bool | None = None
    pretrained_uri: str | None = Field(
        None,
        pattern=rf"^s3://{S3_BUCKET}/[^\s]*\.(pt|tar\.gz)$",
        description="s3://.../best.pt, or a previous job's s3://.../model.tar.gz",
    )
    champion: str | None = Field(
        None,
        pattern=r"^(none|arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[A-Za-z0-9-]{1,63}/[0-9]{1,9})$",
        description="the model to compare with: unset = the stage's latest Approved version, 'none' = no comparison "
        "(the registrar then leaves the version for a person when the stage has one), or a version's ARN",
    )
    run_label: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{1,32}$", description="change it to train again on the same inputs"
    )

    # Set from the S3 event only (object etag, plus version-id when versioned): a new dataset.json in the same
    # prefix is a new dataset, so it must give a new job. Operators re-train with run_label instead.
    dataset_version: str | None = Field(None, exclude=True)

    @property
    def dataset_bucket(self) -> str:
        return self.dataset_uri.removeprefix("s3://").split("/", 1)[0]


def _parse_request(raw: Mapping[str, Any]) -> TrainingRequest:
    try:
        request = TrainingRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(request)"
        raise RequestError(field, f"{first['msg']} (got {first.get('input')!r:.200})") from None
    if request.instance_type is not None:
        try:
            instance_types.family(request.instance_type)
            instance_types.check_architecture(request.instance_type)  # our images are linux/amd64 only
        except instance_types.InstanceTypeError as exc:
            raise RequestError("instance_type", str(exc)) from None
    uri = request.dataset_uri
    # Accept the dataset.json URI itself; a dataset is its folder.
    if uri.endswith("/" + DATASET_JSON):
        uri = uri[: -len(DATASET_JSON)]
    if not uri.endswith("/") or uri.count("/") < 4:
        raise RequestError("dataset_uri", f"expected a dataset folder 's3://<bucket>/<prefix>/', got '{uri}'")
    return request.model_copy(update={"dataset_uri": uri})


def _from_s3_event(event: Mapping[str, Any]) -> TrainingRequest:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise RequestError("detail", "expected the S3 event detail object")
    bucket = detail.get("bucket", {}).get("name") if isinstance(detail.get("bucket"), Mapping) else None
    key = detail.get("object", {}).get("key") if isinstance(detail.get("object"), Mapping) else None
    if not isinstance(bucket, str) or not bucket:
        raise RequestError("detail.bucket.name", "expected the bucket name")
    if not isinstance(key, str) or not key.endswith("/" + DATASET_JSON):
        raise RequestError("detail.object.key", f"expected '<dataset prefix>/{DATASET_JSON}', got {key!r}")
    obj = detail["object"]
    etag, version_id = obj.get("etag"), obj.get("version-id")
    if not isinstance(etag, str) or not etag:
        raise RequestError(
            "detail.object.etag", "expected the object's etag (S3 'Object Created' events carry it)"
        )
    # EventBridge gives the key URL-encoded (spaces as '+', '=' as %3D): decode it before it names a prefix.
    prefix = unquote_plus(key)[: -len(DATASET_JSON)]
    request = _parse_request({"dataset_uri": f"s3://{bucket}/{prefix}"})
    version = f"{etag}/{version_id}" if isinstance(version_id, str) and version_id else etag
    return request.model_copy(update={"dataset_version": version})


def parse_event(event: object) -> tuple[TrainingRequest, Trigger]:
    """Turn a Lambda event into a request; raise RequestError naming the field when it is not one."""
    if not isinstance(event, Mapping):
        raise RequestError("(event)", f"expected a JSON object, got {type(event).__name__}")
    if event.get("source") == S3_SOURCE:
        if event.get("detail-type") != OBJECT_CREATED:
            raise RequestError(
                "detail-type", f"expected '{OBJECT_CREATED}', got {event.get('detail-type')!r}"
            )
        return _from_s3_event(event), "dataset-event"
    if "dataset_uri" not in event:
        raise RequestError(
            "dataset_uri",
            "missing; expected an operator request {'dataset_uri': 's3://...', 'hyperparameters': {...}} "
            "or an EventBridge S3 'Object Created' event for a dataset.json",
        )
    if "dataset_version" in event:
        raise RequestError(
            "dataset_version",
            "set from the S3 event only; to train again on the same inputs give a new run_label",
        )
    return _parse_request(event), "operator"
