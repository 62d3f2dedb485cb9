"""Synthesize every stage and the release pipeline into cdk.out, with cdk-nag (on every synth) and cfn-lint over
every template. Without a configured pipeline (infra.stages.PIPELINE) the example pipeline (placeholder accounts) is
synthesized next to it, into ``<outdir>.pipeline-example``, so the pipeline stays nag- and lint-clean too.

Prints a short per-stage summary (stacks, resources by type, endpoint or not) and exits non-zero on any cdk-nag
error or cfn-lint error (cfn-lint warnings are printed, not fatal). Offline: no AWS account, network or Docker.

    python -m scripts.synth [--outdir cdk.out] [--force]

``--outdir`` (and ``<outdir>.pipeline-example``) is replaced only when it is missing, empty, or a cloud assembly a synth
wrote: a ``cdk.out`` version file, a ``manifest.json`` with the assembly schema's ``version`` and ``artifacts``, every
stage folder that manifest names, and nothing a synth does not write. Any other folder is refused (``--outdir`` unless
``--force``; the example's folder always), and the checkout itself, a folder that holds it, and the home folder are
refused always. Every stage is built and synthesized into a new folder first and moved into place only when all of it
succeeded, so a refused stage config, a construct error or a cdk-nag finding leaves an existing assembly as it was.

Exit status (scripts/lib/cli.py): 0 clean, 1 error (a stage config that does not validate, a construct error, a refused
--outdir), 2 usage, 3 findings (a cdk-nag or cfn-lint error).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint_file
from cfnlint.rules import Match

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from infra.paths import REPO_ROOT
from scripts.lib import cli
from scripts.lib.cli import CheckFailed, OperatorError

ENDPOINT_TYPE = "AWS::SageMaker::Endpoint"


# What a synth writes at the top of a cloud assembly: the version file and manifest, the construct tree, the
# policy-validation report (cdk-nag), templates with their asset manifests and metadata, staged assets, nested stage
# assemblies, the pipeline's graph; and the lock files the cdk CLI leaves while it reads or writes one.
ASSEMBLY_ENTRIES = re.compile(
    r"cdk\.out|manifest\.json|tree\.json|validation-report\.json|asset\..+|assembly-.+"
    r"|.+\.(template|assets|metadata)\.json|.+\.dot|.+\.lock"
)


@dataclass
class StackSummary:
    stage: str
    stack: str  # construct id inside the stage, e.g. "Data"
    template: Path
    resources: collections.Counter[str] = field(default_factory=collections.Counter)
    variants: list[str] = field(default_factory=list)  # one line per production variant (instance, GPU AMI)


def variant_lines(resources: dict[str, dict]) -> list[str]:
    """``g5-xlarge: 1 x ml.g5.xlarge, InferenceAmiVersion al2-...-3-1 (NVIDIA driver 550 / CUDA 12.4)`` per variant."""
    from app.contracts.instance_types import INFERENCE_AMIS

    lines = []
    for resource in resources.values():
        if resource["Type"] != "AWS::SageMaker::EndpointConfig":
            continue
        for variant in resource["Properties"].get("ProductionVariants", []):
            line = f"{variant['VariantName']}: {variant.get('InitialInstanceCount')} x {variant.get('InstanceType')}"
            ami = variant.get("InferenceAmiVersion")
            if ami:
                line += f", InferenceAmiVersion {ami} ({INFERENCE_AMIS.get(ami, 'unknown driver')})"
            lines.append(line)
    return lines


def check_outdir(outdir: Path, *, force: bool) -> None:
    """Refuse to replace a folder this command did not write (``--outdir .`` would wipe the checkout)."""
    _refuse_protected(outdir, "--outdir")
    reason = not_an_assembly(outdir)
    if reason and not force:
        raise OperatorError(
            f"--outdir {outdir}: not empty and not a CDK cloud assembly ({reason}); synth replaces its folder: "
            "choose another --outdir, or pass --force to replace it"
        )


def check_example_dir(example: Path) -> None:
    """The example pipeline's folder is named after --outdir, not by the operator: never replaced unless a synth
    wrote it (--force does not reach it)."""
    _refuse_protected(example, "the example pipeline's folder")
    reason = not_an_assembly(example)
    if reason:
        raise OperatorError(
            f"{example}: not empty and not a CDK cloud assembly ({reason}); synth writes the example pipeline there, "
            "next to --outdir: move that folder away or choose another --outdir"
        )


def _refuse_protected(folder: Path, what: str) -> None:
    resolved = folder.resolve()
    if resolved == Path.home().resolve() or resolved in (REPO_ROOT, *REPO_ROOT.parents):
        raise OperatorError(
            f"{what} {folder}: refusing to replace {resolved} (it holds the checkout or your home)"
        )


def not_an_assembly(folder: Path) -> str | None:
    """Why ``folder`` is not one a synth wrote (None: missing, empty, or a cloud assembly with nothing added)."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    foreign = sorted(p.name for p in folder.iterdir() if not ASSEMBLY_ENTRIES.fullmatch(p.name))
    if foreign:
        return (
            f"holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}, which synth does not write"
        )
    version = _json_object(folder / "cdk.out")
    if not isinstance(version.get("version"), str):
        return "no cdk.out version file"
    manifest = _json_object(folder / "manifest.json")
    artifacts = manifest.get("artifacts")
    if not isinstance(manifest.get("version"), str) or not isinstance(artifacts, dict):
        return "manifest.json is not a cloud assembly manifest (no version and artifacts)"
    stage_dirs = [
        (a.get("properties") or {}).get("directoryName")
        for a in artifacts.values()
        if isinstance(a, dict) and a.get("type") == "cdk:cloud-assembly"
    ]
    for directory in stage_dirs:
        if not isinstance(directory, str) or not (folder / directory / "manifest.json").is_file():
            return f"its manifest.json names a stage assembly {directory} that is not there"
    return None


def _json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def synthesize(outdir: Path) -> list[StackSummary]:
    """Synthesize the app of infra/app.py into ``outdir`` (replaced: check it first with check_outdir), plus the
    example pipeline into ``<outdir>.pipeline-example`` when no pipeline is configured.

    Both are built and synthesized into a new folder next to them first and moved into place only when both
    succeeded: a refused config or a failed synth leaves the folders as they were.
    Raises CheckFailed on cdk-nag findings, OperatorError on another construct error."""
    from infra import paths
    from infra.app import (  # late: importing aws_cdk starts the jsii runtime
        build_app,
        example_pipeline_stages,
        example_release,
        pipeline_config,
        stage_configs,
    )
    from infra.release_record import load_current_or_none

    configs = stage_configs()  # every stage config validates (ConfigError) before anything is removed
    # The operator's app deploys the operator's release (none yet: no endpoint); the example pipeline, the example
    # record (a fixture), whatever the operator's release is.
    release, pipeline = load_current_or_none(paths.RELEASES_DIR), pipeline_config()
    apps = [(outdir, lambda **kw: build_app(configs, release=release, pipeline=pipeline, **kw))]
    if pipeline is None:
        stages, example_pipeline = example_pipeline_stages()
        example = example_dir(outdir)
        check_example_dir(example)
        apps.append(
            (
                example,
                lambda **kw: build_app(stages, release=example_release(), pipeline=example_pipeline, **kw),
            )
        )
    with _staging_area(outdir) as staging:
        for index, (_, build) in enumerate(apps):
            _synthesize_app(build, staging / str(index))
        for index, (target, _) in enumerate(apps):
            _move_into_place(staging / str(index), target, staging)
    summaries = stack_summaries(outdir)
    if pipeline is None:
        summaries += [s for s in stack_summaries(example_dir(outdir)) if s.stage == PIPELINE_STAGE]
    return summaries


def example_dir(outdir: Path) -> Path:
    return outdir.with_name(f"{outdir.name}.pipeline-example")


@contextlib.contextmanager
def _staging_area(outdir: Path) -> Iterator[Path]:
    """A new hidden folder on the file system of ``outdir`` (so moving out of it is a rename), removed at the end
    whatever happens; it sits in the nearest folder that exists, so a failed synth creates no parents."""
    near = outdir.absolute().parent
    while not near.is_dir():
        near = near.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.synth-", dir=near))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(new: Path, target: Path, staging: Path) -> None:
    """Replace ``target`` (checked: missing, empty or an assembly) with ``new``; the old one leaves by rename first,
    so a failure in between never leaves half of each."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rename(staging / f"{target.name}.old")
    new.rename(target)


def _synthesize_app(build: Any, outdir: Path) -> None:
    app = build(outdir=str(outdir))  # stages assets into outdir as it builds
    try:
        app.synth()
    except RuntimeError as exc:  # jsii wraps the JavaScript error; the report names each violating construct
        report = outdir / "validation-report.json"
        if report.exists():
            raise CheckFailed(f"synth failed: {_first_line(exc)}\n{nag_findings(report)}".rstrip()) from None
        raise OperatorError(f"synth failed: {_first_line(exc)}") from None


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
                    stage,
                    stack,
                    template,
                    collections.Counter(r["Type"] for r in resources.values()),
                    variant_lines(resources),
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
            for line in s.variants:
                print(f"{'':<12}variant {line}")
        if blue_green := blue_green_line(stacks):
            print(blue_green)


def parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m scripts.synth",
        description="Synthesize every stage (cdk-nag on), cfn-lint every template, print a per-stage summary. "
        "Exit status 3 on any cdk-nag or cfn-lint error (cfn-lint warnings are printed, not fatal).",
    )
    parser.add_argument(
        "--outdir",
        type=cli.directory_or_new,
        default=REPO_ROOT / "cdk.out",
        help="cloud assembly dir (replaced when it is one; see --force)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace --outdir even when it does not look like a cloud assembly",
    )
    return parser


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    check_outdir(args.outdir, force=args.force)

    started = time.perf_counter()
    summaries = synthesize(args.outdir)
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
    if errors:
        raise CheckFailed(f"cfn-lint: {errors} error(s) (listed above)")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
