"""Key prefixes of the datasets and artifacts buckets, shared by infra (lifecycle rules, grants) and the
launcher/training code.

The datasets bucket holds raw Ground Truth manifests and images under ``raw/`` (dataprep reads them) and dataprep
outputs under any other prefix (a new ``<prefix>/dataset.json``, ``app.contracts.dataset.DATASET_JSON``, starts a
training run); the artifacts bucket is split by prefix so lifecycle rules and IAM grants can differ per kind of
object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.contracts.errors import ContractError

MODELS_PREFIX = "models/"  # model.tar.gz of registered model versions (serving reads these)
CHECKPOINTS_PREFIX = "checkpoints/"  # spot-training checkpoints (only needed while a job runs or resumes)
DATA_CAPTURE_PREFIX = "data-capture/"  # endpoint request/response capture
# SageMaker OutputDataConfig (model.tar.gz + output.tar.gz per job)
TRAINING_OUTPUT_PREFIX = "training-output/"
# Under TRAINING_OUTPUT_PREFIX<job>/ (next to output/model.tar.gz): the registrar's copy of the job's champion
# comparison (comparison.json, its PNGs), which the model package version's ModelMetrics point at.
EVALUATION_DIR = "evaluation/"
RAW_PREFIX = "raw/"  # datasets bucket: raw manifests and images that dataprep reads (never a dataset itself)
# Artifacts-bucket prefixes the training role can read (infra/constructs/training_role.py grants exactly these): a
# pretrained checkpoint anywhere else is refused by the launcher before any AWS call.
TRAINING_READABLE_PREFIXES: tuple[str, ...] = (MODELS_PREFIX, TRAINING_OUTPUT_PREFIX, CHECKPOINTS_PREFIX)


# --- S3 URIs ------------------------------------------------------------------------------------------------------
# Bucket names: "Bucket naming rules", Amazon S3 User Guide
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html, read 2026-12-05): 3-63 characters,
# lowercase letters, numbers, dots and hyphens, beginning and ending with a letter or number, no two adjacent dots,
# not formatted as an IP address, not starting with xn-- / sthree- / amzn-s3-demo-, not ending with -s3alias /
# --ol-s3 / .mrap / --x-s3 (reserved for access point, Object Lambda, Multi-Region and directory-bucket names).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")
SCHEME = "s3://"


class S3UriError(ContractError):
    """Text that looks like an S3 location (starts with ``s3:``) but is not a well-formed ``s3://bucket/key``."""


def looks_like_s3(text: str) -> bool:
    """Anything starting with ``s3:`` (any case) is meant as S3: it is parsed strictly, never taken as a local path
    (``s3:/bucket/x`` would otherwise become a local folder named ``s3:``)."""
    return text[:3].lower() == "s3:"


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid general purpose bucket name (None when it is)."""
    if not _BUCKET.match(bucket):
        return "expected 3-63 lowercase letters, numbers, dots or hyphens, starting and ending with a letter or number"
    if ".." in bucket or _IP.match(bucket):
        return "expected no two adjacent dots and not an IP address"
    if bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        return "the name uses a prefix or suffix S3 reserves"
    return None


@dataclass(frozen=True)
class S3Uri:
    """``s3://<bucket>/<key>``: the one parser of S3 locations (data prep, operator commands, stage settings)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, text: str, *, key_required: bool = False) -> S3Uri:
        """Parse strictly; raise S3UriError naming what is wrong (``s3:/b/k``, ``S3://``, a bad bucket name)."""
        if not text.startswith(SCHEME):
            raise S3UriError(
                f"'{text}' is not an S3 URI; expected {SCHEME}<bucket>/<key> (two slashes, lowercase)"
            )
        bucket, _, key = text[len(SCHEME) :].partition("/")
        problem = bucket_problem(bucket)
        if problem:
            raise S3UriError(f"'{text}': bucket '{bucket}': {problem}")
        if key_required and not key.strip("/"):
            raise S3UriError(f"'{text}': no key; expected {SCHEME}{bucket}/<key>")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def within(self, prefix: S3Uri) -> bool:
        """True when this object is under ``prefix`` (same bucket, key starting with the prefix's key)."""
        return self.bucket == prefix.bucket and self.key.startswith(prefix.key)
