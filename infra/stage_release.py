"""What one stage deploys of a release: the image URIs it pins and the model it serves, checked against the stage.

The composition root (infra/app.py) reads the release record (infra/release_record.py) and hands every stage a
``StageRelease``; the stacks take it as a typed prop. A stage that cannot run the release is refused at synth with
the stage, the field and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.contracts import instance_types
from infra.config import ConfigError, StageConfig
from infra.release_record import Release, ReleaseError, ReleaseModel, ServeVariant
from infra.stages import EXAMPLE_ENVIRONMENTS, EXAMPLE_PIPELINE

# The example's placeholder accounts (infra/stages.py): a release that names one was never built in a real account.
PLACEHOLDER_ACCOUNTS = frozenset(
    [env["account"] for env in EXAMPLE_ENVIRONMENTS.values()] + [str(EXAMPLE_PIPELINE["account"])]
)


def serve_variant(instance_type: str) -> ServeVariant:
    """The serve image variant an endpoint instance type runs (infra/constructs/images.py builds the same split)."""
    return "gpu" if instance_types.is_gpu(instance_type) else "cpu"


@dataclass(frozen=True)
class StageRelease:
    """Pinned image URIs (None: built from ``containers/`` for this stage) and the model of one release."""

    release_id: str
    dataprep: str | None
    train: str | None
    serve: str | None
    model: ReleaseModel
    model_readers: tuple[str, ...] = ()  # other accounts that read the model and images (registry stage only)
    # Every serve variant of the release (variant, pinned URI); empty when the stage builds its images.
    serve_variants: tuple[tuple[ServeVariant, str], ...] = ()
    pipeline_account: str | None = None  # the release pipeline's account: its gates verify this stage

    @property
    def model_object_key(self) -> str:
        return self.model.key


def release_accounts(release: Release) -> dict[str, str]:
    """Field -> account of everything a release names in an account (model package, images)."""
    accounts = {"model.package_arn": release.model.account}
    images = release.images
    accounts.update({"images.dataprep": images.dataprep.account, "images.train": images.train.account})
    accounts.update({f"images.serve.{v}": image.account for v, image in sorted(images.serve.items())})
    return accounts


def check_not_placeholder(release: Release, config: StageConfig) -> None:
    """ConfigError when a stage in a real account would deploy a release that names the example's placeholder
    accounts (the example record, tests/fixtures/releases/): its images and model do not exist anywhere."""
    if not config.account or config.account in PLACEHOLDER_ACCOUNTS:
        return
    for field, account in release_accounts(release).items():
        if account in PLACEHOLDER_ACCOUNTS:
            raise ConfigError(
                f"stage {config.name} (account {config.account}): release {release.release_id} field '{field}' is "
                f"in the example's placeholder account {account}, expected a release built in your registry "
                "account (python -m scripts.release create; until then remove releases/CURRENT: the stage deploys "
                "Data + Training and no endpoint)"
            )


def for_stage(
    release: Release,
    config: StageConfig,
    *,
    build_images: bool = False,
    model_readers: Iterable[str] = (),
    pipeline_account: str | None = None,
) -> StageRelease:
    """The part of ``release`` that ``config`` deploys; ConfigError when the stage cannot run it."""
    check_not_placeholder(release, config)
    if config.endpoint.has_model_version:
        raise ConfigError(
            f"stage {config.name}: field 'endpoint.model_data_key'/'endpoint.model_package_arn': expected unset, the "
            f"stage deploys release {release.release_id} and the release names the model (remove it from "
            "infra/stages.py)"
        )
    pinned = [name for name in ("dataprep", "train", "serve") if getattr(config.images, name)]
    if pinned:
        raise ConfigError(
            f"stage {config.name}: field 'images.{pinned[0]}': expected unset, the stage deploys release "
            f"{release.release_id} and the release names every image digest"
        )
    try:
        serve = release.serve_image(serve_variant(config.endpoint.instance_type))
    except ReleaseError as exc:
        raise ConfigError(f"stage {config.name} (endpoint {config.endpoint.instance_type}): {exc}") from None
    try:
        release.model.check_precision(
            config.endpoint.precision, stage=config.name, int8_caps=config.int8_caps
        )
    except ReleaseError as exc:
        raise ConfigError(f"release {release.release_id}: {exc}") from None
    if config.region:
        # "The model artifacts in an Amazon S3 bucket and the Docker image for inference container in Amazon EC2
        # Container Registry must be in the same region as the model or endpoint you are creating."
        # (ContainerDefinition, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html,
        # read 2026-11-30)
        for field, region in (("model.package_arn", release.model.region), ("images.serve", serve.region)):
            if region != config.region:
                raise ConfigError(
                    f"stage {config.name}: release {release.release_id} field '{field}' is in {region}, expected "
                    f"the stage's region {config.region} (SageMaker reads images and model data in its own region)"
                )
    images = release.images
    return StageRelease(
        release_id=release.release_id,
        dataprep=None if build_images else images.dataprep.uri,
        train=None if build_images else images.train.uri,
        serve=None if build_images else serve.uri,
        serve_variants=() if build_images else tuple((v, i.uri) for v, i in sorted(images.serve.items())),
        model=release.model,
        model_readers=tuple(sorted(set(model_readers))),
        pipeline_account=pipeline_account,
    )
