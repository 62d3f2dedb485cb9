"""Settings of the launcher Lambdas, parsed once from the Lambda environment that CDK writes.

Each field reads the variable named in app/contracts/launcher_environment.py (its ``validation_alias``), the names
infra writes. Lists and maps arrive as JSON strings (pydantic-settings decodes them). A missing or invalid variable
fails the cold start with the variable's name, never a KeyError deep inside a handler.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.contracts import instance_types
from app.contracts import launcher_environment as env
from app.contracts.comparison import Tolerances
from app.contracts.errors import ContractError
from app.launcher.trigger import S3_BUCKET

_PREFIX = r"^[a-z0-9][a-z0-9-]{0,30}-$"
_S3_PREFIX_URI = rf"^s3://{S3_BUCKET}/([^\s]*/)?$"


class SettingsError(ContractError):
    """The Lambda environment is missing or has an invalid setting (a deployment bug, not an operator error)."""


class Settings(BaseSettings):
    """What both launcher Lambdas read."""

    # populate_by_name: tests and callers may also pass the field names
    model_config = SettingsConfigDict(
        case_sensitive=False, frozen=True, extra="ignore", populate_by_name=True
    )

    stage: str = Field(min_length=1, validation_alias=env.STAGE)
    job_name_prefix: str = Field(
        pattern=_PREFIX,
        validation_alias=env.JOB_NAME_PREFIX,
        description="every job of this stage starts with it",
    )
    notify_topic_arn: str | None = Field(
        None, validation_alias=env.NOTIFY_TOPIC_ARN, description="SNS topic for operator notifications"
    )


class ChampionSettings(Settings):
    """What both launchers know of the stage's champion: its model package group and the comparison's tolerances
    (ranges as in app/contracts/comparison.py Tolerances; infra/config.py narrows them at synth)."""

    model_package_group_name: str = Field(min_length=1, validation_alias=env.MODEL_PACKAGE_GROUP_NAME)
    champion_map_drop_tolerance: float = Field(ge=0, le=1, validation_alias=env.CHAMPION_MAP_DROP_TOLERANCE)
    champion_class_drop_tolerance: float = Field(
        ge=0, le=1, validation_alias=env.CHAMPION_CLASS_DROP_TOLERANCE
    )
    champion_min_class_instances: int = Field(ge=1, validation_alias=env.CHAMPION_MIN_CLASS_INSTANCES)
    champion_confidence: float = Field(gt=0, lt=1, validation_alias=env.CHAMPION_CONFIDENCE)

    def tolerances(self) -> Tolerances:
        return Tolerances(
            map_drop_tolerance=self.champion_map_drop_tolerance,
            class_drop_tolerance=self.champion_class_drop_tolerance,
            min_class_instances=self.champion_min_class_instances,
            confidence=self.champion_confidence,
        )


_T = TypeVar("_T", bound=Settings)


class RunnerSettings(ChampionSettings):
    """What every training job of the stage gets (from infra/config.py TrainingSettings)."""

    training_image_uri: str = Field(min_length=1, validation_alias=env.TRAINING_IMAGE_URI)
    training_role_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", validation_alias=env.TRAINING_ROLE_ARN
    )
    instance_type: str = Field(validation_alias=env.INSTANCE_TYPE)
    instance_count: instance_types.TrainingInstanceCount = Field(validation_alias=env.INSTANCE_COUNT)
    volume_size_gb: int = Field(ge=5, le=16384, validation_alias=env.VOLUME_SIZE_GB)
    max_runtime_seconds: int = Field(ge=60, validation_alias=env.MAX_RUNTIME_SECONDS)
    use_spot: bool = Field(validation_alias=env.USE_SPOT)
    max_wait_seconds: int = Field(ge=60, validation_alias=env.MAX_WAIT_SECONDS)
    network_isolation: bool = Field(True, validation_alias=env.NETWORK_ISOLATION)
    subnet_ids: tuple[str, ...] = Field((), validation_alias=env.SUBNET_IDS)
    security_group_ids: tuple[str, ...] = Field((), validation_alias=env.SECURITY_GROUP_IDS)
    kms_key_arn: str = Field(min_length=1, validation_alias=env.KMS_KEY_ARN)
    datasets_bucket: str = Field(min_length=3, validation_alias=env.DATASETS_BUCKET)
    output_s3_uri: str = Field(
        pattern=_S3_PREFIX_URI, validation_alias=env.OUTPUT_S3_URI, description="S3OutputPath; ends with /"
    )
    checkpoint_s3_uri: str = Field(
        pattern=_S3_PREFIX_URI,
        validation_alias=env.CHECKPOINT_S3_URI,
        description="job checkpoints go under <this><job>/",
    )
    default_hyperparameters: dict[str, str] = Field(
        default_factory=dict, validation_alias=env.DEFAULT_HYPERPARAMETERS
    )
    int8_map_drop_cap: float = Field(ge=0, le=1, validation_alias=env.INT8_MAP_DROP_CAP)
    int8_class_drop_cap: float = Field(ge=0, le=1, validation_alias=env.INT8_CLASS_DROP_CAP)
    tags: dict[str, str] = Field(default_factory=dict, validation_alias=env.TAGS)

    @model_validator(mode="after")
    def _spot(self) -> RunnerSettings:
        if self.use_spot and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds ({self.max_wait_seconds}) < max_runtime_seconds "
                f"({self.max_runtime_seconds}) with use_spot on"
            )
        return self

    @property
    def artifacts_bucket(self) -> str:
        return self.output_s3_uri.removeprefix("s3://").split("/", 1)[0]


class RegistrarSettings(ChampionSettings):
    """Where finished jobs become model versions, and what counts as good enough to approve automatically."""

    quality_bar_map50_95: float = Field(ge=0, le=1, validation_alias=env.QUALITY_BAR_MAP50_95)
    serve_image_uri: str = Field(min_length=1, validation_alias=env.SERVE_IMAGE_URI)


def load(cls: type[_T]) -> _T:
    """Read ``cls`` from the environment; raise SettingsError naming every bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise SettingsError(f"{cls.__name__}: invalid Lambda environment: {'; '.join(problems)}") from None
