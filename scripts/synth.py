"""Synthesize every stage and the release pipeline into cdk.out, with cdk-nag (on every synth) and cfn-lint over
every template. Without a configured pipeline (infra.stages.PIPELINE) the example pipeline (placeholder accounts) is
synthesized next to it, into ``<outdir>.pipeline-example``, so the pipeline stays nag- and lint-clean too.

Prints a short per-stage summary (stacks, resources by type, endpoint or not) and exits non-zero on any cdk-nag
error or cfn-lint error (cfn-lint warnings are printed, not fatal). Offline: no AWS account, network or Docker.

    python -m scripts.synth [--outdir cdk.out]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint_file
from cfnlint.rules import Match

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before aws_cdk starts node

REPO_ROOT = Path(__file__).resolve().parents[1]
ENDPOINT_TYPE = "AWS::SageMaker::Endpoint"


class SynthError(RuntimeError):
    """Synthesis failed (cdk-nag findings, or a construct error): the message says what and where."""


@dataclass
class StackSummary:
    stage: str
    stack: str  # construct id inside the stage, e.g. "Data"
    template: Path
    resources: collections.Counter[str] = field(default_factory=collections.Counter)


def synthesize(outdir: Path) -> list[StackSummary]:
    """Synthesize the app of infra/app.py into ``outdir`` (replaced), plus the example pipeline when no pipeline is
    configured; raise SynthError on cdk-nag findings."""
    from app.contracts.release import load_current
    from infra.app import (  # late: starts jsii
        RELEASES_DIR,
        build_app,
        example_pipeline_stages,
        pipeline_config,
    )

    summaries = _synthesize_app(build_app, outdir)
    if pipeline_config() is None:
        stages, pipeline = example_pipeline_stages()
        example = outdir.with_name(f"{outdir.name}.pipeline-example")
        summaries += _synthesize_app(
            lambda **kw: build_app(stages, release=load_current(RELEASES_DIR), pipeline=pipeline, **kw),
            example,
            only_top_level=True,
        )
    return summaries


def _synthesize_app(build: Any, outdir: Path, *, only_top_level: bool = False) -> list[StackSummary]:
    if outdir.exists():
        shutil.rmtree(outdir)
    app = build(outdir=str(outdir))
    try:
        app.synth()
    except RuntimeError as exc:  # jsii wraps the JavaScript error; the report names each violating construct
        report = outdir / "validation-report.json"
        raise SynthError(
            f"{_first_line(exc)}\n{nag_findings(report) if report.exists() else ''}".rstrip()
        ) from None
    summaries = stack_summaries(outdir)
    return [s for s in summaries if s.stage == PIPELINE_STAGE] if only_top_level else summaries


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def nag_findings(report: Path) -> str:
    """One line per violating construct from CDK's validation-report.json."""
    lines = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                lines.append(
                    f"  [{violation.get('severity')}] {violation['ruleName']} at {construct['constructPath']}: "
                    f"{violation.get('description', '')}"
                )
    return "\n".join(lines)


PIPELINE_STAGE = "(pipeline)"  # the summary's name for stacks at the top of the app (the release pipeline)


def stack_summaries(outdir: Path) -> list[StackSummary]:
    """Every stack of every stage in a synthesized cloud assembly, in manifest order, then top-level stacks."""
    summaries = []
    root = json.loads((outdir / "manifest.json").read_text())["artifacts"]
    top_level = [a for a in root.values() if a["type"] == "aws:cloudformation:stack"]
    stage_dirs = [
        outdir / a["properties"]["directoryName"] for a in root.values() if a["type"] == "cdk:cloud-assembly"
    ]
    for stage_dir in stage_dirs:  # promotion order (the order of infra/stages.py)
        stage = stage_dir.name.removeprefix("assembly-")
        manifest = json.loads((stage_dir / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            template = stage_dir / artifact["properties"]["templateFile"]
            stack = artifact.get("displayName", artifact["properties"].get("stackName", "")).split("/")[-1]
            resources = json.loads(template.read_text()).get("Resources", {})
            summaries.append(
                StackSummary(
                    stage, stack, template, collections.Counter(r["Type"] for r in resources.values())
                )
            )
    for artifact in top_level:
        template = outdir / artifact["properties"]["templateFile"]
        resources = json.loads(template.read_text()).get("Resources", {})
        summaries.append(
            StackSummary(
                PIPELINE_STAGE,
                artifact.get("displayName", ""),
                template,
                collections.Counter(r["Type"] for r in resources.values()),
            )
        )
    return summaries


# W3005 (redundant DependsOn) only ever fires on CDK's own custom-resource providers, which we cannot change.
IGNORED_CFN_LINT_CHECKS = ["W3005"]


def lint(templates: list[Path]) -> list[Match]:
    """cfn-lint every template (default rules, us-east-1 specs; env-agnostic stacks are region-free)."""
    config = ManualArgs(regions=["us-east-1"], ignore_checks=IGNORED_CFN_LINT_CHECKS)
    matches: list[Match] = []
    for template in templates:
        matches.extend(lint_file(template, config))
    return matches


def is_error(match: Match) -> bool:
    return match.rule.id.startswith("E")


def print_summary(summaries: list[StackSummary]) -> None:
    by_stage: dict[str, list[StackSummary]] = collections.defaultdict(list)
    for summary in summaries:
        by_stage[summary.stage].append(summary)
    for stage, stacks in by_stage.items():
        endpoint = any(s.resources[ENDPOINT_TYPE] for s in stacks)
        total = sum(sum(s.resources.values()) for s in stacks)
        what = "" if stage == PIPELINE_STAGE else f", endpoint {'yes' if endpoint else 'NO'}"
        print(f"{stage}: {len(stacks)} stacks, {total} resources{what}")
        for s in stacks:
            counts = ", ".join(f"{t.removeprefix('AWS::')} {n}" for t, n in sorted(s.resources.items()))
            print(
                textwrap.fill(
                    counts or "(empty)",
                    width=110,
                    initial_indent=f"  {s.stack:<9} ",
                    subsequent_indent=" " * 12,
                )
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.synth",
        description="Synthesize every stage (cdk-nag on), cfn-lint every template, print a per-stage summary. "
        "Exit status 1 on any cdk-nag or cfn-lint error.",
    )
    parser.add_argument(
        "--outdir", type=Path, default=REPO_ROOT / "cdk.out", help="cloud assembly dir (replaced)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        summaries = synthesize(args.outdir)
    except SynthError as exc:
        print(f"synth failed: {exc}", file=sys.stderr)
        return 1
    synth_s = time.perf_counter() - started
    print_summary(summaries)

    started = time.perf_counter()
    matches = lint([s.template for s in summaries])
    for match in matches:
        print(f"cfn-lint {'error' if is_error(match) else 'warning'}: {match}", file=sys.stderr)
    errors = sum(is_error(m) for m in matches)
    print(
        f"cdk-nag: clean (AwsSolutions, Serverless); cfn-lint: {errors} errors, {len(matches) - errors} warnings "
        f"over {len(summaries)} templates; synth {synth_s:.1f}s, lint {time.perf_counter() - started:.1f}s; "
        f"output {args.outdir}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
