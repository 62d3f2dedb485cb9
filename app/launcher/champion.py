"""The champion a training job is compared with: the stage's latest Approved model package version, unless the
request opts out (``"champion": "none"``) or names a version's ARN.

Found with ListModelPackages (the stage's group, ``ModelApprovalStatus=Approved``, newest first, one result) and
DescribeModelPackage (its ``ModelDataUrl``):
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html (read 2026-12-05).
The job gets it as the ``champion`` channel (its model.tar.gz, staged like ``pretrained``) and as hyperparameters
naming it and the stage's tolerances (app/contracts/comparison.py); the container writes model.json["comparison"].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.launcher import aws
from app.launcher.readable import check_training_readable
from app.launcher.settings import RunnerSettings
from app.launcher.trigger import RequestError, TrainingRequest

NO_CHAMPION = "none"
# Set by the runner from the champion it found: a request naming them is refused (it names "champion" instead).
RUNNER_SET = ("champion_version", "champion_model_data")
# The stage's tolerances: a request may tighten them (smaller drops, more instances, higher confidence), never loosen
# them - the registrar would leave such a version for a person anyway. (name, stage setting, looser when)
_TOLERANCES: tuple[tuple[str, str, str], ...] = (
    ("champion_map_drop_tolerance", "champion_map_drop_tolerance", "above"),
    ("champion_class_drop_tolerance", "champion_class_drop_tolerance", "above"),
    ("champion_min_class_instances", "champion_min_class_instances", "above"),
    ("champion_confidence", "champion_confidence", "below"),
)


@dataclass(frozen=True)
class Champion:
    version: str  # model package ARN
    model_data: str  # s3:// URI of its model.tar.gz


def _group_name(settings: RunnerSettings) -> str:
    return settings.model_package_group_name.rsplit("/", 1)[-1]  # the setting is the group's ARN


def check_request(request: TrainingRequest, settings: RunnerSettings) -> None:
    """Refuse a champion of another group and champion hyperparameters a request may not set (pure: before any
    AWS call; the runner role may describe only its stage's versions)."""
    if request.champion not in (None, NO_CHAMPION):
        named_group = str(request.champion).rsplit("/", 2)[-2]
        if named_group != _group_name(settings):
            raise RequestError(
                "champion",
                f"'{request.champion}' is a version of '{named_group}', expected one of this stage's group "
                f"'{_group_name(settings)}'",
            )
    for name in RUNNER_SET:
        if name in request.hyperparameters:
            raise RequestError(
                f"hyperparameters.{name}",
                "set by the runner from the stage's champion; to choose it, give 'champion': a model package "
                "version ARN of this stage, or 'none'",
            )
    for name, setting, looser in _TOLERANCES:
        if name not in request.hyperparameters:
            continue
        raw = request.hyperparameters[name]
        stage = getattr(settings, setting)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise RequestError(f"hyperparameters.{name}", f"expected a number, got {raw!r}") from None
        if (value > stage) if looser == "above" else (value < stage):
            bound = "at most" if looser == "above" else "at least"
            raise RequestError(
                f"hyperparameters.{name}",
                f"{value} is looser than the stage's {stage} (expected {bound} {stage}): the registrar approves "
                "only comparisons at least as strict as the stage's",
            )


def find(request: TrainingRequest, settings: RunnerSettings, sagemaker: Any) -> Champion | None:
    """The champion of ``request``'s job, or None (opted out, or the stage has no Approved version yet). A named
    version that does not exist, belongs to another group or lies where the training role cannot read is refused."""
    if request.champion == NO_CHAMPION:
        return None
    arn = request.champion
    if arn is None:
        found = sagemaker.list_model_packages(
            ModelPackageGroupName=settings.model_package_group_name,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )["ModelPackageSummaryList"]
        if not found:
            return None
        arn = str(found[0]["ModelPackageArn"])
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as exc:
        if request.champion is not None and aws.is_not_found(exc):
            raise RequestError("champion", f"model package version '{arn}' does not exist") from None
        raise
    return _champion(package, arn, settings, named=request.champion is not None)


def _champion(package: Mapping[str, Any], arn: str, settings: RunnerSettings, *, named: bool) -> Champion:
    group = _group_name(settings)
    if package.get("ModelPackageGroupName", "").rsplit("/", 1)[-1] != group:
        raise RequestError(
            "champion",
            f"'{arn}' is a version of '{package.get('ModelPackageGroupName')}', expected one of this stage's "
            f"group '{group}'",
        )
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    model_data = str(containers[0].get("ModelDataUrl", "")) if containers else ""
    if not model_data:
        raise RequestError("champion", f"'{arn}' has no ModelDataUrl to compare with")
    why = (
        "" if named else " (the stage's latest Approved version; give 'champion': 'none' to train without it)"
    )
    check_training_readable(model_data, settings, field="champion", what=f"the champion's model{why}")
    return Champion(version=arn, model_data=model_data)


def champion_hyperparameters(
    champion: Champion, settings: RunnerSettings, requested: Mapping[str, str]
) -> dict[str, str]:
    """The stage's tolerances (a request's stricter ones kept) and the champion's identity, as SageMaker strings."""
    tolerances = settings.tolerances()
    return {
        "champion_map_drop_tolerance": str(tolerances.map_drop_tolerance),
        "champion_class_drop_tolerance": str(tolerances.class_drop_tolerance),
        "champion_min_class_instances": str(tolerances.min_class_instances),
        "champion_confidence": str(tolerances.confidence),
        **{k: v for k, v in requested.items() if k.startswith("champion_")},
        "champion_version": champion.version,
        "champion_model_data": champion.model_data,
    }
