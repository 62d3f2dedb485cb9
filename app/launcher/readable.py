"""Which S3 objects a training job can read: the training role reads the whole datasets bucket but only some
prefixes of the artifacts bucket (infra/constructs/training_role.py). A start checkpoint or a champion elsewhere is
refused by the runner now, not as AccessDenied once the instance is up."""

from __future__ import annotations

from app.contracts.storage import TRAINING_READABLE_PREFIXES
from app.launcher.settings import RunnerSettings
from app.launcher.trigger import RequestError


def check_training_readable(uri: str, settings: RunnerSettings, *, field: str, what: str) -> None:
    """Raise RequestError naming ``field`` unless the training role can read ``uri``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if bucket == settings.datasets_bucket:
        return
    readable = ", ".join(f"s3://{settings.artifacts_bucket}/{p}" for p in TRAINING_READABLE_PREFIXES)
    if bucket != settings.artifacts_bucket:
        raise RequestError(
            field,
            f"expected {what} in the datasets bucket '{settings.datasets_bucket}' or under {readable}, got '{uri}'",
        )
    if not key.startswith(TRAINING_READABLE_PREFIXES):
        raise RequestError(
            field, f"the training role cannot read '{uri}': in the artifacts bucket it reads only {readable}"
        )
