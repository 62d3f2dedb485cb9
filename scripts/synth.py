"""Synthesize every stage into cdk.out, with cdk-nag (on every synth) and cfn-lint over every template.

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
    """Synthesize the app of infra/app.py into ``outdir`` (replaced); raise SynthError on cdk-nag findings."""
    from infra.app import build_app  # late: importing aws_cdk starts the jsii runtime

    if outdir.exists():
        shutil.rmtree(outdir)
    app = build_app(outdir=str(outdir))
    try:
        app.synth()
    except RuntimeError as exc:  # jsii wraps the JavaScript error; the report names each violating construct
        report = outdir / "validation-report.json"
        raise SynthError(
            f"{_first_line(exc)}\n{nag_findings(report) if report.exists() else ''}".rstrip()
        ) from None
    return stack_summaries(outdir)


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


def stack_summaries(outdir: Path) -> list[StackSummary]:
    """Every stack of every stage in a synthesized cloud assembly, in manifest order."""
    summaries = []
    root = json.loads((outdir / "manifest.json").read_text())["artifacts"]
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
    return summaries


# W3005 (redundant DependsOn) only ever fires on CDK's own custom-resource providers, which we cannot change.
# W6001 (an output that is an ImportValue): the Training stack re-exposes two Data values (datasets bucket, key) so
# scripts/dataprep_job.py finds a stage's inputs in one stack; with strong cross-stack references that is an import.
IGNORED_CFN_LINT_CHECKS = ["W3005", "W6001"]


def lint(templates: list[Path]) -> list[Match]:
    """cfn-lint every template (default rules, us-east-1 specs; env-agnostic stacks are region-free)."""
    config = ManualArgs(regions=["us-east-1"], ignore_checks=IGNORED_CFN_LINT_CHECKS)
    matches: list[Match] = []
    for template in templates:
        matches.extend(lint_file(template, config))
    return matches


def is_error(match: Match) -> bool:
    return match.rule.id.startswith("E")


def blue_green_line(stacks: list[StackSummary]) -> str | None:
    """What a blue/green deploy at max capacity runs at once (old + new fleet), from a stage's templates."""
    for s in stacks:
        resources = json.loads(s.template.read_text()).get("Resources", {}).values()
        configs = [r for r in resources if r["Type"] == "AWS::SageMaker::EndpointConfig"]
        targets = [r for r in resources if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]
        if configs and targets:
            instance_type = configs[0]["Properties"]["ProductionVariants"][0]["InstanceType"]
            most = targets[0]["Properties"]["MaxCapacity"]
            return (
                f"  blue/green at max capacity runs {2 * most} x {instance_type} (old + new fleet, 2 x {most}): "
                f"python -m scripts.training quota --stage {s.stage}"
            )
    return None


def print_summary(summaries: list[StackSummary]) -> None:
    by_stage: dict[str, list[StackSummary]] = collections.defaultdict(list)
    for summary in summaries:
        by_stage[summary.stage].append(summary)
    for stage, stacks in by_stage.items():
        endpoint = any(s.resources[ENDPOINT_TYPE] for s in stacks)
        total = sum(sum(s.resources.values()) for s in stacks)
        print(f"{stage}: {len(stacks)} stacks, {total} resources, endpoint {'yes' if endpoint else 'NO'}")
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
        if line := blue_green_line(stacks):
            print(line)


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
