"""Composition root of the CDK app (named in cdk.json): the only place that reads environment, files or context.

Builds one PlatformStage per entry of infra.stages.STAGES, with the feature flags of cdk.json (so tests and
``scripts/synth.py`` synthesize exactly what ``npx cdk synth`` does), and runs cdk-nag on every synth. CDK's
built-in CloudFormation validation is off: cfn-lint checks every template instead (``scripts/synth.py``, tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from infra.config import StageConfig, check_promotion_order, load_stage
from infra.nag import add_checks
from infra.stage import PlatformStage
from infra.stages import STAGES

REPO_ROOT = Path(__file__).resolve().parents[1]
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


def build_app(stages: dict[str, StageConfig] | None = None, *, outdir: str | None = None) -> cdk.App:
    """Build the app for the given stage configs (default: the ones in infra/stages.py)."""
    app = cdk.App(
        outdir=outdir,
        context=feature_flags(),
        builtin_cloud_formation_validation=False,
        analytics_reporting=False,  # keeps templates free of CDKMetadata (no version-dependent noise)
    )
    add_checks(app)
    for name, config in (stages if stages is not None else stage_configs()).items():
        PlatformStage(app, name, config=config)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
