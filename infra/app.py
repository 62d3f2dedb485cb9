"""Composition root of the CDK app (named in cdk.json): the only place that reads environment, files or context.

Builds one PlatformStage per entry of infra.stages.STAGES, with the feature flags of cdk.json (so tests and
``scripts/synth.py`` synthesize exactly what ``npx cdk synth`` does), and runs cdk-nag on every synth. CDK's
built-in CloudFormation validation is off: cfn-lint checks every template instead (``scripts/synth.py``, tests).

Every stage deploys the release named by ``releases/CURRENT`` (or ``-c release=<id>``); ``-c build_images=Dev``
builds that stage's images from ``containers/`` instead of pinning the release's digests (how a new release's images
come to exist). A fresh clone has no CURRENT: the stages then deploy Data + Training (images built from
``containers/``) and no endpoint, and the app says so. With ``infra.stages.PIPELINE`` set, the app also holds the
release pipeline stack (which needs a release).

Only this app reads the operator's ``releases/``; the tests and the example pipeline read the example record
(``infra.paths.EXAMPLE_RELEASES_DIR``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from infra import paths
from infra.config import (
    ConfigError,
    PipelineConfig,
    StageConfig,
    check_pipeline_stages,
    load_pipeline,
    load_stage,
    load_stages,
)
from infra.nag import add_checks
from infra.paths import EXAMPLE_RELEASES_DIR, REPO_ROOT
from infra.release_record import Release, load_current, load_current_or_none, load_release, release_path
from infra.stage import PlatformStage
from infra.stage_release import for_stage
from infra.stages import EXAMPLE_ENVIRONMENTS, EXAMPLE_PIPELINE, PIPELINE, STAGES

CDK_JSON = REPO_ROOT / "cdk.json"
PACKAGE_JSON = REPO_ROOT / "package.json"


def cdk_cli_version() -> str:
    """The AWS CDK CLI version package.json pins (what make synth and cdk deploy run; the pipeline installs it too)."""
    return str(json.loads(PACKAGE_JSON.read_text())["devDependencies"]["aws-cdk"])


def feature_flags() -> dict[str, Any]:
    """The ``context`` of cdk.json (feature flags); the CDK CLI passes these itself, plain Python does not."""
    return dict(json.loads(CDK_JSON.read_text())["context"])


def stage_configs() -> dict[str, StageConfig]:
    """Validate every stage of infra/stages.py and their promotion order (raises ConfigError naming the stage and
    field)."""
    return load_stages(STAGES)


def pipeline_config() -> PipelineConfig | None:
    return load_pipeline(PIPELINE) if PIPELINE is not None else None


def example_pipeline_stages() -> tuple[dict[str, StageConfig], PipelineConfig]:
    """infra/stages.py's stages with the example accounts and EXAMPLE_PIPELINE: what make synth and the tests
    synthesize so the pipeline stays cdk-nag and cfn-lint clean before anyone configures PIPELINE."""
    missing = [name for name in STAGES if name not in EXAMPLE_ENVIRONMENTS]
    if missing:
        raise ConfigError(
            f"stage {missing[0]!r}: no example environment; add it to EXAMPLE_ENVIRONMENTS in infra/stages.py "
            "(a placeholder account such as '555555555555' and the example region): make synth synthesizes the "
            "example pipeline with every stage"
        )
    stages = {
        name: load_stage(name, {**values, **EXAMPLE_ENVIRONMENTS[name]}) for name, values in STAGES.items()
    }
    return stages, load_pipeline(EXAMPLE_PIPELINE)


def example_release() -> Release:
    """The example record (placeholder accounts, eu-west-1) that the example pipeline and the tests deploy."""
    return load_current(EXAMPLE_RELEASES_DIR)


NO_RELEASE_NOTICE = (
    "{pointer}: no current release yet: every stage deploys Data + Training (images built from containers/) and no "
    "endpoint. Train, approve, then `python -m scripts.release create --from-stage Dev` (docs/releasing.md)."
)


def release_for(app: cdk.App, releases_dir: Path) -> Release | None:
    """The release of ``-c release=<id>``, else the one ``releases/CURRENT`` names, else None (and says so)."""
    requested = app.node.try_get_context("release")
    if requested:
        return load_release(release_path(releases_dir, str(requested)))
    release = load_current_or_none(releases_dir)
    if release is None:
        print(NO_RELEASE_NOTICE.format(pointer=releases_dir / "CURRENT"), file=sys.stderr)
    return release


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
    releases_dir: Path | None = None,
) -> cdk.App:
    """Build the app for the given stage configs (default: infra/stages.py, the release of ``releases_dir``
    (default: the operator's ``releases/``) and its pipeline).

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
        release = release or release_for(app, releases_dir or paths.RELEASES_DIR)
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
        platform[name] = PlatformStage(
            app, name, config=config, release=stage_release, registry=name == next(iter(stages))
        )
    if pipeline is not None:
        from infra.stacks.pipeline import (
            PipelineStack,
        )  # late: only a configured pipeline needs aws_cdk.pipelines

        if release is None:
            raise ConfigError(
                "pipeline: expected a current release (releases/CURRENT): the pipeline deploys one release through "
                "every stage; deploy 'Dev/*' by hand until the first release exists (docs/releasing.md)"
            )
        PipelineStack(
            app,
            "Pipeline",
            config=pipeline,
            stages=list(platform.values()),
            release=release,
            cli_version=cdk_cli_version(),
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
