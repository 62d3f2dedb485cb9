"""A release: the image digests and the one model version every stage runs, as one immutable JSON document.

Releases are data (``releases/<release id>.json``; ``releases/CURRENT`` holds the id of the one the stages deploy).
Images are built once and named by digest; the model is a registered, Approved model package with its model data
URI and the sha256 of that ``model.tar.gz``. Promoting Dev -> Staging -> Prod deploys the same record, so the
stages run the same bytes. Read by the CDK app (what each stage deploys), the release preflight and the post-deploy
verifier (``scripts/release/checks.py``) and the operator CLI (``scripts/release/``); one definition here.

A record that is not valid is refused with the source, the field and what was expected, e.g.
``releases/r7.json: field 'images.serve.gpu.digest': expected 'sha256:<64 hex>', got 'sha256:12ab'``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.contracts.artifact import Int8Result, Int8Status, Precision
from app.contracts.metrics import QUALITY_METRIC  # the metric the registrar approves on
from infra.image_uri import DIGEST, REPOSITORY_URI

SCHEMA_VERSION: Literal[1] = 1
ServeVariant = Literal["cpu", "gpu"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PACKAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"model-package/(?P<group>[A-Za-z0-9-]{1,63})/(?P<version>[0-9]+)$"
)
_S3_URI = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[A-Za-z0-9!_.*'()/=-]+\.tar\.gz)$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$")
_RELEASE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


class ReleaseError(ValueError):
    """A release record that cannot be deployed; the message names the source, the field and what was expected."""


def _expect(pattern: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"expected {expected}, got '{value}'")
        return value

    return AfterValidator(check)


Digest = Annotated[str, _expect(DIGEST, "'sha256:<64 hex>'")]
Sha256 = Annotated[str, _expect(_SHA256, "64 lowercase hex characters (sha256 of model.tar.gz)")]
Repository = Annotated[
    str, _expect(REPOSITORY_URI, "'<account>.dkr.ecr.<region>.amazonaws.com/<repository>'")
]
PackageArn = Annotated[
    str,
    _expect(_PACKAGE_ARN, "'arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>'"),
]
S3Uri = Annotated[str, _expect(_S3_URI, "'s3://<bucket>/<key>.tar.gz'")]
KmsKeyArn = Annotated[str, _expect(_KMS_KEY_ARN, "'arn:<partition>:kms:<region>:<account>:key/<key id>'")]


def _approved(value: str) -> str:
    # A versioned model package must be Approved before it is deployed (SageMaker Developer Guide, "Update the
    # Approval Status of a Model", https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-approve.html,
    # read 2026-11-30).
    if value != "Approved":
        raise ValueError(f"expected 'Approved' (only an Approved model version is deployed), got '{value}'")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageDigest(_Strict):
    """One image, by digest: ``<repository>@<digest>`` is what SageMaker and Lambda run."""

    repository: Repository
    digest: Digest

    @property
    def uri(self) -> str:
        return f"{self.repository}@{self.digest}"

    @property
    def account(self) -> str:
        return self._part("account")

    @property
    def region(self) -> str:
        return self._part("region")

    @property
    def repository_name(self) -> str:
        return self._part("repo")

    def _part(self, name: str) -> str:
        match = REPOSITORY_URI.match(self.repository)
        assert match  # validated
        return match[name]


class ReleaseImages(_Strict):
    """Every image the stages run. ``serve`` has one digest per variant in use (cpu: slim, gpu: CUDA)."""

    dataprep: ImageDigest
    train: ImageDigest
    serve: dict[ServeVariant, ImageDigest] = Field(min_length=1)


class Int8Gate(_Strict):
    """The int8 accuracy gate the model was held to and what it measured (model.json 'int8'), so that a stage serving
    int8 can refuse a release whose bar is looser than the stage allows (training.int8_*_cap)."""

    status: Int8Status
    max_map50_95_drop: float = Field(ge=0, description="the bar: largest allowed val mAP50-95 drop")
    max_class_drop: float | None = Field(None, ge=0, description="the bar of one class")
    map50_95_drop: float | None = Field(None, description="the measured drop (fp32 - int8)")
    evidence: dict[str, object] | None = Field(
        None, description="what the decision rests on: bootstrap bound, worst class, val images, agreement"
    )

    @classmethod
    def of(cls, result: Int8Result) -> Int8Gate:
        return cls(
            status=result.status,
            max_map50_95_drop=result.max_map50_95_drop,
            max_class_drop=result.max_class_drop,
            map50_95_drop=result.map50_95_drop,
            evidence=result.evidence,
        )


class ReleaseModel(_Strict):
    """The one model version: a registered model package, Approved, and its model data with a checksum."""

    package_arn: PackageArn
    approval_status: Annotated[str, AfterValidator(_approved)]
    model_data_uri: S3Uri
    sha256: Sha256
    kms_key_arn: KmsKeyArn | None = Field(
        None, description="the key that encrypts model_data_uri, if SSE-KMS"
    )
    metrics: dict[str, float] = Field(description="the final metrics the version was approved on")
    dataset_version: str = Field(min_length=1, max_length=256)
    card_version: str = Field(
        min_length=1,
        max_length=256,
        description="model.json 'version': what the endpoint answers as model.version",
    )
    precisions: tuple[Precision, ...] = Field(
        ("fp32",),
        description="the graphs model.tar.gz ships (model.json precisions(), read by release create); a record "
        "written before int8 existed ships fp32 only",
    )
    int8_gate: Int8Gate | None = Field(
        None, description="the int8 step's bar and evidence (None: no int8 was attempted, or an older record)"
    )

    @model_validator(mode="after")
    def _quality_metric(self) -> ReleaseModel:
        if QUALITY_METRIC not in self.metrics:
            raise ValueError(
                f"metrics: expected the quality metric '{QUALITY_METRIC}', got {sorted(self.metrics)}"
            )
        if "fp32" not in self.precisions or len(set(self.precisions)) != len(self.precisions):
            raise ValueError(
                f"precisions: expected 'fp32' (every artifact ships model.onnx) and no repeats, got "
                f"{list(self.precisions)}"
            )
        return self

    def check_precision(
        self, precision: str, *, stage: str, int8_caps: tuple[float, float] | None = None
    ) -> None:
        """ReleaseError unless the model ships ``precision`` (what ``stage``'s endpoint.precision asks for) and, for
        int8, passed a gate no looser than ``int8_caps`` (the stage's mAP and per-class caps)."""
        if precision not in self.precisions:
            raise ReleaseError(
                f"stage {stage}: field 'endpoint.precision' is {precision}, but the release's model "
                f"({self.package_group} v{self.package_version}, field 'model.precisions') ships only "
                f"{list(self.precisions)}: the server would refuse to start. Set endpoint.precision to one of "
                f"those, or release a model whose int8 graph passed the accuracy gate (model.json 'int8')"
            )
        if precision != "int8" or int8_caps is None:
            return
        gate, (map_cap, class_cap) = self.int8_gate, int8_caps
        if gate is None:
            raise ReleaseError(
                f"stage {stage} serves int8, but the release's model (field 'model.int8_gate') records no int8 gate: "
                "nothing says which bar the int8 graph passed; create the release again (release create reads it)"
            )
        if gate.max_map50_95_drop > map_cap or gate.max_class_drop is None or gate.max_class_drop > class_cap:
            raise ReleaseError(
                f"stage {stage} serves int8, but the release's int8 graph passed a looser gate (field "
                f"'model.int8_gate': mAP50-95 drop <= {gate.max_map50_95_drop:g}, class drop <= "
                f"{gate.max_class_drop}) than the stage accepts (training.int8_map_drop_cap {map_cap:g}, "
                f"int8_class_drop_cap {class_cap:g}); retrain with int8 bars within them, or serve fp32"
            )

    @property
    def package_group(self) -> str:
        return self._arn("group")

    @property
    def package_version(self) -> int:
        return int(self._arn("version"))

    @property
    def account(self) -> str:
        return self._arn("account")

    @property
    def region(self) -> str:
        return self._arn("region")

    @property
    def quality(self) -> float:
        return self.metrics[QUALITY_METRIC]

    @property
    def bucket(self) -> str:
        return self._s3("bucket")

    @property
    def key(self) -> str:
        return self._s3("key")

    def _arn(self, name: str) -> str:
        match = _PACKAGE_ARN.match(self.package_arn)
        assert match
        return match[name]

    def _s3(self, name: str) -> str:
        match = _S3_URI.match(self.model_data_uri)
        assert match
        return match[name]


class Release(_Strict):
    """One release record (immutable: a change is a new release id)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    release_id: Annotated[
        str, _expect(_RELEASE_ID, "3-63 characters of a-z, 0-9 and '-' (e.g. 'r-20261130-1')")
    ]
    created_at: datetime
    git_commit: Annotated[str, _expect(_COMMIT, "a full 40-hex git commit")]
    images: ReleaseImages
    model: ReleaseModel
    notes: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _images_in_the_registry(self) -> Release:
        """Every image lives in the registry account (the model package's): images are built once there and every
        stage pulls them by digest through its repository policies; an image elsewhere (a developer's account, the
        example's placeholder) is nothing the stages can pull."""
        registry = self.model.account
        for field, image in self.image_fields().items():
            if image.account != registry:
                raise ValueError(
                    f"{field}: expected an image in the registry account {registry} (model.package_arn's: images "
                    f"are built once, there), got account {image.account}"
                )
        return self

    def image_fields(self) -> dict[str, ImageDigest]:
        """``images.dataprep``, ``images.train``, ``images.serve.<variant>`` -> the image."""
        images = {"images.dataprep": self.images.dataprep, "images.train": self.images.train}
        images.update({f"images.serve.{v}": image for v, image in sorted(self.images.serve.items())})
        return images

    def serve_image(self, variant: ServeVariant) -> ImageDigest:
        """The serve image of ``variant``; refused when the release has none (a stage needs one it lacks)."""
        image = self.images.serve.get(variant)
        if image is None:
            raise ReleaseError(
                f"release {self.release_id}: field 'images.serve.{variant}': expected a digest of the {variant} "
                f"serve image (a stage serves on {variant} instances), the release has {sorted(self.images.serve)}"
            )
        return image

    def image_uris(self) -> dict[str, str]:
        """``dataprep``, ``train``, ``serve.<variant>`` -> ``<repository>@<digest>``."""
        uris = {"dataprep": self.images.dataprep.uri, "train": self.images.train.uri}
        uris.update({f"serve.{variant}": image.uri for variant, image in sorted(self.images.serve.items())})
        return uris

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def s3_location(uri: str) -> tuple[str, str]:
    """``s3://<bucket>/<key>.tar.gz`` -> (bucket, key); ReleaseError for anything else."""
    match = _S3_URI.match(uri)
    if not match:
        raise ReleaseError(f"model data {uri!r}: expected 's3://<bucket>/<key>.tar.gz'")
    return match["bucket"], match["key"]


def parse_release(text: str, *, source: str) -> Release:
    """Validate a release document; ReleaseError names ``source``, each bad field and what was expected."""
    try:
        return Release.model_validate_json(text)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(record)"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "json_invalid":
                message = (
                    f"not a JSON document ({err['ctx'].get('error', message) if 'ctx' in err else message})"
                )
            problems.append(f"{source}: field '{field}': {message}")
        raise ReleaseError("; ".join(problems)) from None


def load_release(path: Path) -> Release:
    """Read and validate ``path``; a missing file is a ReleaseError too."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read the release record ({exc.strerror})") from None
    release = parse_release(text, source=str(path))
    if path.name != f"{release.release_id}.json":
        raise ReleaseError(
            f"{path}: field 'release_id': expected '{path.stem}' (a record is named after its id), "
            f"got '{release.release_id}'"
        )
    return release


SERVE_VARIANTS: tuple[ServeVariant, ...] = ("cpu", "gpu")


def serve_variant_output(variant: ServeVariant) -> str:
    """The registry stage's Data stack output naming its ``variant`` serve image (built there from containers/, or
    the release's digest): where ``release create`` takes every serve variant from (``ServeGpuImageUri``)."""
    return f"Serve{variant.capitalize()}ImageUri"


CURRENT = "CURRENT"  # file in the releases folder that holds the id of the release the stages deploy


def release_path(releases_dir: Path, release_id: str) -> Path:
    if not _RELEASE_ID.match(release_id):
        raise ReleaseError(f"release id '{release_id}': expected 3-63 characters of a-z, 0-9 and '-'")
    return releases_dir / f"{release_id}.json"


def current_release_id(releases_dir: Path) -> str:
    """The id in ``releases/CURRENT`` (one line)."""
    pointer = releases_dir / CURRENT
    try:
        release_id = pointer.read_text().strip()
    except OSError as exc:
        raise ReleaseError(f"{pointer}: cannot read the current release id ({exc.strerror})") from None
    if not _RELEASE_ID.match(release_id):
        raise ReleaseError(f"{pointer}: expected one release id (e.g. 'r-20261130-1'), got '{release_id}'")
    return release_id


def load_current(releases_dir: Path) -> Release:
    """The release ``releases/CURRENT`` names."""
    return load_release(release_path(releases_dir, current_release_id(releases_dir)))


def load_current_or_none(releases_dir: Path) -> Release | None:
    """The current release, or None when ``releases_dir`` has no CURRENT yet (a fresh clone: nothing released)."""
    if not (releases_dir / CURRENT).exists():
        return None
    return load_current(releases_dir)
