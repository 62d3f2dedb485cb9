"""Settings of the launcher Lambdas, parsed once from the Lambda environment that CDK writes (infra/stacks/training.py).

Lists and maps arrive as JSON strings (pydantic-settings decodes them). A missing or invalid variable fails the
cold start with the variable's name, never a KeyError deep inside a handler.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.contracts.errors import ContractError
from app.launcher.request import InstanceCount

_PREFIX = r"^[a-z0-9][a-z0-9-]{0,30}-$"
_S3_PREFIX_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^\s]*/)?$"


class SettingsError(ContractError):
    """The Lambda environment is missing or has an invalid setting (a deployment bug, not an operator error)."""


class _Base(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, frozen=True, extra="ignore")

    stage: str = Field(min_length=1)
    job_name_prefix: str = Field(pattern=_PREFIX, description="every job of this stage starts with it")
    notify_topic_arn: str | None = Field(None, description="SNS topic for operator notifications")


_T = TypeVar("_T", bound="_Base")


class RunnerSettings(_Base):
    """What every training job of the stage gets (from infra/config.py TrainingSettings)."""

    training_image_uri: str = Field(min_length=1)
    training_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    instance_type: str
    instance_count: InstanceCount
    volume_size_gb: int = Field(ge=5, le=16384)
    max_runtime_seconds: int = Field(ge=60)
    use_spot: bool
    max_wait_seconds: int = Field(ge=60)
    network_isolation: bool = True
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    kms_key_arn: str = Field(min_length=1)
    datasets_bucket: str = Field(min_length=3)
    output_s3_uri: str = Field(pattern=_S3_PREFIX_URI, description="S3OutputPath; ends with /")
    checkpoint_s3_uri: str = Field(
        pattern=_S3_PREFIX_URI, description="job checkpoints go under <this><job>/"
    )
    default_hyperparameters: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)

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


class RegistrarSettings(_Base):
    """Where finished jobs become model versions, and what counts as good enough to approve automatically."""

    model_package_group_name: str = Field(min_length=1)
    quality_bar_map50_95: float = Field(ge=0, le=1)
    serve_image_uri: str = Field(min_length=1)


def load(cls: type[_T]) -> _T:
    """Read ``cls`` from the environment; raise SettingsError naming every bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise SettingsError(f"{cls.__name__}: invalid Lambda environment: {'; '.join(problems)}") from None
