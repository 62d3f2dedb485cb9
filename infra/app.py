"""Composition root of the CDK app (named in cdk.json): the only place that reads environment or context.

Builds one PlatformStage per entry of infra.stages.STAGES and runs cdk-nag on every synth.
"""

from __future__ import annotations

import aws_cdk as cdk

from infra.config import StageConfig, load_stage
from infra.stage import PlatformStage
from infra.stages import STAGES


def build_app(stages: dict[str, StageConfig] | None = None, *, outdir: str | None = None) -> cdk.App:
    """Build the app for the given stage configs (default: the ones in infra/stages.py)."""
    app = cdk.App(outdir=outdir) if outdir else cdk.App()
    configs = stages if stages is not None else {name: load_stage(name, values) for name, values in STAGES.items()}
    for name, config in configs.items():
        PlatformStage(app, name, config=config)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
