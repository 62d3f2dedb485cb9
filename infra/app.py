"""Composition root of the CDK app (named in cdk.json): the only place that reads environment, files or context.

Builds one PlatformStage per entry of infra.stages.STAGES, with the feature flags of cdk.json (so tests and
``scripts/synth.py`` synthesize exactly what ``npx cdk synth`` does), and runs cdk-nag on every synth. CDK's
built-in CloudFormation validation is off: cfn-lint checks every template instead (``scripts/synth.py``, tests).

Every stage deploys the release named by ``releases/CURRENT`` (or ``-c release=<id>``); ``-c build_images=Dev``
builds that stage's images from ``containers/`` instead of pinning the release's digests (how a new release's images
come to exist). With ``infra.stages.PIPELINE`` set, the app also holds the release pipeline stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk

from app.contracts.release import Release, load_current, load_release, previous_release, release_path
from infra.config import (
    ConfigError,
    PipelineConfig,
    StageConfig,
    check_pipeline_stages,
    check_promotion_order,
    load_pipeline,
    load_stage,
)
from infra.nag import add_checks
from infra.paths import RELEASES_DIR, REPO_ROOT
from infra.release import for_stage
from infra.stage import PlatformStage
from infra.stages import EXAMPLE_ENVIRONMENTS, EXAMPLE_PIPELINE, PIPELINE, STAGES

CDK_JSON = REPO_ROOT / "cdk.json"


def feature_flags() -> dict[str, Any]:
    """The ``context`` of cdk.json (feature flags); the CDK CLI passes these itself, plain Python does not."""
    return dict(json.loads(CDK_JSON.read_text())["context"])


def stage_configs() -> dict[str, StageConfig]:
    """Validate every stage of infra/stages.py and their promotion order (raises ConfigError naming the stage and
    field)."""
    configs = {name: load_stage(name, values) for name, values in STAGES.items()}
    check_promotion_order(configs)
    return configs


def pipeline_config() -> PipelineConfig | None:
    return load_pipeline(PIPELINE) if PIPELINE is not None else None


def example_pipeline_stages() -> tuple[dict[str, StageConfig], PipelineConfig]:
    """infra/stages.py's stages with the example accounts and EXAMPLE_PIPELINE: what make synth and the tests
    synthesize so the pipeline stays cdk-nag and cfn-lint clean before anyone configures PIPELINE."""
    stages = {
        name: load_stage(name, {**values, **EXAMPLE_ENVIRONMENTS[name]}) for name, values in STAGES.items()
    }
    return stages, load_pipeline(EXAMPLE_PIPELINE)


def release_for(app: cdk.App) -> Release:
    """The release of ``-c release=<id>``, else the one ``releases/CURRENT`` names."""
    requested = app.node.try_get_context("release")
    if requested:
        return load_release(release_path(RELEASES_DIR, str(requested)))
    return load_current(RELEASES_DIR)


def _build_images(app: cdk.App, stages: dict[str, StageConfig], given: Iterable[str] | None) -> set[str]:
    """``-c build_images=Dev``: the first stage in promotion order may build its images (never a later one)."""
    requested = ",".join(given) if given is not None else app.node.try_get_context("build_images")
    if not requested:
        return set()
    names = {n.strip() for n in str(requested).split(",") if n.strip()}
    first = next(iter(stages), None)
    if names - {first}:
        raise ConfigError(
            f"context 'build_images': expected '{first}' (images are built once, in the first stage, and every later "
            f"stage runs their digests), got {sorted(names)}"
        )
    return names


def build_app(
    stages: dict[str, StageConfig] | None = None,
    *,
    release: Release | None = None,
    pipeline: PipelineConfig | None = None,
    build_images: Iterable[str] | None = None,
    outdir: str | None = None,
) -> cdk.App:
    """Build the app for the given stage configs (default: infra/stages.py, its release and its pipeline).

    With explicit ``stages`` the stages deploy ``release`` (None: the stage config's own model, if any) and the app
    holds ``pipeline`` only when given.
    """
    app = cdk.App(
        outdir=outdir,
        context=feature_flags(),
        builtin_cloud_formation_validation=False,
        analytics_reporting=False,  # keeps templates free of CDKMetadata (no version-dependent noise)
    )
    add_checks(app)
    if stages is None:
        stages = stage_configs()
        release = release or release_for(app)
        pipeline = pipeline or pipeline_config()
    if pipeline is not None:
        check_pipeline_stages(pipeline, list(stages.values()))
    build = _build_images(app, stages, build_images)
    readers = _model_readers(release, stages, pipeline) if release else ()
    platform: dict[str, PlatformStage] = {}
    for name, config in stages.items():
        stage_release = None
        if release is not None:
            stage_release = for_stage(
                release,
                config,
                build_images=name in build,
                model_readers=readers if config.account == release.model.account else (),
                pipeline_account=pipeline.account if pipeline else None,
            )
        platform[name] = PlatformStage(app, name, config=config, release=stage_release)
    if pipeline is not None:
        from infra.stacks.pipeline import (
            PipelineStack,
        )  # late: only a configured pipeline needs aws_cdk.pipelines

        assert release is not None, "a pipeline deploys a release"
        PipelineStack(
            app,
            "Pipeline",
            config=pipeline,
            stages=list(platform.values()),
            release=release,
            previous_release=previous_release(RELEASES_DIR, release),
        )
    return app


def _model_readers(
    release: Release, stages: dict[str, StageConfig], pipeline: PipelineConfig | None
) -> tuple[str, ...]:
    """Accounts other than the registry's that read the release's model and images: the stages that serve it, and
    the pipeline whose preflight checks the package and the model object's checksum."""
    accounts = {c.account for c in stages.values() if c.account}
    if pipeline is not None:
        accounts.add(pipeline.account)
    return tuple(sorted(accounts - {release.model.account}))


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
