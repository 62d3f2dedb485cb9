"""Champion comparisons as the training container writes them (made through app/contracts/comparison.py, verdict by
its rule), packed into a real ``model.tar.gz`` like SageMaker packs ``/opt/ml/model`` (files at the root, the
weights before model.json), and uploaded where a job's output lands."""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

from PIL import Image

from app.contracts.comparison import ChampionRef, Comparison, Difference, Tolerances, verdict_of

STAGE_TOLERANCES = Tolerances(
    map_drop_tolerance=0.01, class_drop_tolerance=0.05, min_class_instances=20, confidence=0.95
)
CHAMPION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/dev-yolo-detector/3"
CHAMPION_DATA = "s3://stage-artifacts-bucket/training-output/yolo-dev-old/output/model.tar.gz"
REPORTS = {"pr_curves": "comparison/pr_curves.png", "confusion": "comparison/confusion_matrices.png"}


def diff(champion: float, candidate: float, half_width: float, instances: int = 120) -> Difference:
    d = candidate - champion
    return Difference(
        champion=champion,
        candidate=candidate,
        difference=d,
        ci_low=d - half_width,
        ci_high=d + half_width,
        instances=instances,
    )


def compared(classes: dict[str, Difference], tolerances: Tolerances = STAGE_TOLERANCES) -> Comparison:
    """A ``compared`` comparison whose verdict is the contract's rule applied to ``classes``."""
    overall = diff(
        sum(d.champion for d in classes.values()) / len(classes),
        sum(d.candidate for d in classes.values()) / len(classes),
        0.004,
        sum(d.instances for d in classes.values()),
    )
    verdict, worse, underpowered = verdict_of(overall, classes, tolerances)
    return Comparison(
        status="compared",
        champion=ChampionRef(version=CHAMPION_ARN, model_data=CHAMPION_DATA),
        tolerances=tolerances,
        images=200,
        resamples=1000,
        overall=overall,
        classes=classes,
        worse_classes=worse,
        underpowered_classes=underpowered,
        verdict=verdict,
        why=f"{verdict}: {', '.join(worse)}",
        reports=dict(REPORTS),
    )


# The candidate lost "wrench" (its CI lies wholly below -0.05) and held the others.
WORSE = {
    "hammer": diff(0.61, 0.62, 0.01),
    "wrench": diff(0.58, 0.41, 0.03),
    "screwdriver": diff(0.55, 0.55, 0.01),
}
# Within noise of the champion on every class (overall +0.001, its CI straddling 0).
NOT_WORSE = {
    "hammer": diff(0.61, 0.612, 0.008),
    "wrench": diff(0.58, 0.579, 0.01),
    "screwdriver": diff(0.55, 0.552, 0.008),
}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def model_tar(comparison: Comparison | None, *, reports: dict[str, bytes] | None = None) -> bytes:
    """A gzipped tar: weights (1 MB of noise) first, then the comparison PNGs, then model.json."""
    card: dict[str, Any] = {"task": "detect", "names": {"0": "hammer", "1": "wrench", "2": "screwdriver"}}
    if comparison is not None:
        card["comparison"] = comparison.model_dump(mode="json")
    members = {"model.onnx": os.urandom(1 << 20), **(reports or {}), "model.json": json.dumps(card).encode()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def upload(s3: Any, uri: str, data: bytes) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
