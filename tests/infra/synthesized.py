"""Synthesized CDK apps for the infra tests: ``SynthesizedApp`` (templates by stage and stack id), ``synthesize``,
``make_stage_config`` (a stage's config with deep-merged overrides) and ``EXAMPLE_RELEASE`` (the example record,
tests/fixtures/releases/, that every default stage deploys; never the operator's releases/CURRENT). The session fixtures that use them are in tests/infra/conftest.py."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.app import build_app, example_release
from infra.config import StageConfig, load_stage
from infra.release_record import Release
from infra.stage import PlatformStage
from infra.stages import STAGES
from scripts.synth import nag_findings

EXAMPLE_RELEASE: Release = example_release()


@dataclass
class SynthesizedApp:
    """A synthesized cloud assembly and the construct tree it came from."""

    outdir: Path
    stages: dict[str, PlatformStage]

    def template_path(self, stage: str, stack: str) -> Path:
        """Template file of stack ``stack`` (construct id, e.g. "Data") in stage ``stage`` (e.g. "Dev")."""
        stage_dir = self.outdir / f"assembly-{stage}"
        if not stage_dir.is_dir():
            raise KeyError(f"no stage '{stage}' in {self.outdir} (have: {sorted(self.stages)})")
        manifest = json.loads((stage_dir / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if (
                artifact["type"] == "aws:cloudformation:stack"
                and artifact.get("displayName") == f"{stage}/{stack}"
            ):
                return stage_dir / artifact["properties"]["templateFile"]
        raise KeyError(f"no stack '{stack}' in stage '{stage}'")

    def template_json(self, stage: str, stack: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.template_path(stage, stack).read_text())
        return result

    def template(self, stage: str, stack: str) -> Template:
        return Template.from_json(self.template_json(stage, stack))

    def templates(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(stage, stack, template) for every stack of every stage."""
        for stage_name, stage in self.stages.items():
            for stack_id in (child.node.id for child in stage.node.children if isinstance(child, cdk.Stack)):
                yield stage_name, stack_id, self.template_json(stage_name, stack_id)

    def stage(self, name: str) -> PlatformStage:
        return self.stages[name]

    def pipeline_template(self) -> dict[str, Any]:
        """The template of the top-level Pipeline stack."""
        result: dict[str, Any] = json.loads((self.outdir / "Pipeline.template.json").read_text())
        return result


def synthesize(configs: dict[str, StageConfig] | None, outdir: Path, **kwargs: Any) -> SynthesizedApp:
    app = build_app(configs, outdir=str(outdir), **kwargs)
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings: name each one instead of jsii's bare "Validation failed"
        report = outdir / "validation-report.json"
        raise AssertionError(
            f"synth failed: {exc}\n{nag_findings(report) if report.exists() else ''}"
        ) from None
    stages = {child.node.id: child for child in app.node.children if isinstance(child, PlatformStage)}
    return SynthesizedApp(outdir=outdir, stages=stages)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_stage_config(name: str, **overrides: Any) -> StageConfig:
    """The config of stage ``name`` from infra/stages.py with ``overrides`` deep-merged (dicts merge, rest replaces)."""
    return load_stage(name, _merge(dict(STAGES[name]), overrides))
