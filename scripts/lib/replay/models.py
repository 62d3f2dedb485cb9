"""The two models of a replay: which ones (a release, a model package, an ``s3://`` model.tar.gz, or a local
artifact) and how they are opened (downloaded, checked against the release's sha256, untarred, and loaded by
app/serving's own Detector, so the replay runs exactly what the endpoint runs)."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.contracts.artifact import MODEL_JSON, ArtifactError
from app.serving.model import Detector
from infra.release_record import Release, ReleaseError, s3_location
from scripts.lib.cli import OperatorError

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelRef:
    """A model to replay: what the report calls it, its model.tar.gz (``s3://``) or local artifact, and the
    sha256 the release recorded for it (None when it came from no release)."""

    label: str
    model_data: str
    sha256: str | None = None
    release_id: str | None = None


def of_release(release: Release) -> ModelRef:
    model = release.model
    return ModelRef(
        label=f"{release.release_id} ({model.package_group} v{model.package_version})",
        model_data=model.model_data_uri,
        sha256=model.sha256,
        release_id=release.release_id,
    )


def resolve(
    text: str,
    *,
    option: str,
    release_by_id: Callable[[str], Release | None],
    package_model_data: Callable[[str], str],
) -> ModelRef:
    """``--candidate`` / ``--champion``: a release id (releases/<id>.json), a model package ARN (its model data),
    ``s3://.../model.tar.gz``, or a local artifact folder / model.tar.gz."""
    if text.startswith("arn:") and ":model-package/" in text:
        url = package_model_data(text)
        if not url.startswith("s3://"):
            raise OperatorError(f"{option} {text}: the model package names no model data (got {url!r})")
        return ModelRef(label=text.rsplit("/", 2)[-2] + " v" + text.rsplit("/", 1)[-1], model_data=url)
    if text.startswith("s3://"):
        try:
            s3_location(text)
        except ReleaseError as exc:
            raise OperatorError(f"{option} {text}: {exc}") from None
        return ModelRef(label=text, model_data=text)
    local = Path(text)
    if local.exists():
        return ModelRef(label=str(local), model_data=str(local))
    release = release_by_id(text)
    if release is None:
        raise OperatorError(
            f"{option} {text}: not a release id (no releases/{text}.json), a model package ARN, an "
            "s3://.../model.tar.gz or a local artifact"
        )
    return of_release(release)


def _download(s3: Any, ref: ModelRef, target: Path) -> None:
    bucket, key = s3_location(ref.model_data)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    with target.open("wb") as handle:
        while chunk := body.read(_CHUNK):
            digest.update(chunk)
            handle.write(chunk)
    if ref.sha256 and digest.hexdigest() != ref.sha256:
        raise OperatorError(
            f"{ref.model_data}: sha256 {digest.hexdigest()} differs from the one release {ref.release_id} recorded "
            f"({ref.sha256}): the object changed since the release was made"
        )


def _untar(archive: Path, into: Path, what: str) -> Path:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")  # no absolute paths, links out of the folder or devices
    except (tarfile.TarError, OSError) as exc:
        raise OperatorError(f"{what}: not a readable model.tar.gz ({exc})") from None
    cards = sorted(into.rglob(MODEL_JSON))
    if not cards:
        raise OperatorError(f"{what}: no {MODEL_JSON} in the archive (not a model artifact)")
    return cards[0].parent


def open_model(ref: ModelRef, *, s3: Any, workdir: Path, name: str) -> Detector:
    """The model ``ref`` names, loaded on the CPU with ONNX Runtime through app/serving's Detector."""
    source = ref.model_data
    if source.startswith("s3://"):
        archive = workdir / f"{name}.tar.gz"
        _download(s3, ref, archive)
        folder = _untar(archive, workdir / name, source)
        archive.unlink()
    elif Path(source).is_file():
        folder = _untar(Path(source), workdir / name, source)
    else:
        folder = Path(source)
    try:
        return Detector.load(folder, device="cpu")
    except ArtifactError as exc:
        raise OperatorError(f"{name} model {ref.label}: {exc}") from None
