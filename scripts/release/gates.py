"""``release preflight`` and ``release verify``: the gates before and after a stage deploys a release (their checks
are scripts/release/checks.py); a FAIL line is exit 3."""

from __future__ import annotations

import argparse
from typing import Any

from infra.release_record import Release
from scripts.lib.aws import assumed, aws_session, stage_config
from scripts.lib.cli import CheckFailed, existing_file, non_negative_int, positive_int, stage_name
from scripts.release.evidence import replay_report_path
from scripts.release.records import read_release


def _gate(args: argparse.Namespace, name: str) -> tuple[Any, Release, Any, Any]:
    """(stage config, release, the caller's session, a session in the stage's account) of a gate command."""
    config, release = stage_config(args.stage), read_release(args.release_file, args.releases_dir)
    session = aws_session(profile=args.profile, region=args.region or release.model.region)
    return config, release, session, assumed(session, args.stage_role_arn, name=f"{name}-{args.stage}")


def _verdict(report: Any, *, passed: str, failed: str) -> int:
    """Print a gate's report; a FAIL line makes it a failed check (exit 3)."""
    print(report.render())
    if not report.ok:
        raise CheckFailed(f"{failed} (FAIL lines above)")
    print(f"{passed}: OK")
    return 0


def cmd_preflight(args: argparse.Namespace) -> int:
    from scripts.release.checks import preflight

    config, release, session, stage = _gate(args, "preflight")
    report = preflight(
        release,
        config,
        registry=session,
        s3=session.client("s3"),
        cloudformation=stage.client("cloudformation"),
        sagemaker=stage.client("sagemaker"),
        service_quotas=stage.client("service-quotas"),
        ecr=session.client("ecr"),  # the registry's repositories, through their policies
        stage_account=config.account or stage.client("sts").get_caller_identity()["Account"],
        replay_report=replay_report_path(args.releases_dir, release, args.replay_report),
    )
    what = f"preflight of {release.release_id} for {args.stage}"
    return _verdict(report, passed=what, failed=f"{what} failed")


def cmd_verify(args: argparse.Namespace) -> int:
    from scripts.lib.endpoint_checks import sample_jpeg
    from scripts.release.checks import protect_stacks, verify_release

    config, release, _, stage = _gate(args, "verify")
    if args.protect_stack:
        protect_stacks(stage.client("cloudformation"), args.protect_stack)
    report = verify_release(
        release,
        config,
        cloudformation=stage.client("cloudformation"),
        sagemaker=stage.client("sagemaker"),
        runtime=stage.client("sagemaker-runtime"),
        image=args.image.read_bytes() if args.image else sample_jpeg(),
        load_requests=args.load_requests,
        load_concurrency=args.load_concurrency,
        ssm=stage.client("ssm"),  # a pass becomes the stage's history (release history / rollback)
        protected=args.protect_stack,
    )
    return _verdict(
        report,
        passed=f"{args.stage} runs {release.release_id}",
        failed=f"{args.stage} does not run release {release.release_id} as expected",
    )


def register(sub: Any) -> None:
    for name, func, what in (
        ("preflight", cmd_preflight, "the gate before a stage deploys a release"),
        (
            "verify",
            cmd_verify,
            "the gate after: the endpoint runs the release, answers, survives a short load",
        ),
    ):
        gate = sub.add_parser(name, help=what)
        gate.add_argument("--stage", required=True, type=stage_name)
        gate.add_argument("--release-file", type=existing_file, help="default: the current release")
        gate.add_argument("--stage-role-arn", help="assume this role for the stage's account")
        gate.set_defaults(func=func)
        if name == "preflight":
            gate.add_argument(
                "--replay-report",
                type=existing_file,
                help="replay.json of release compare (default: releases/replay/<release id>.json if present)",
            )
        if name == "verify":
            gate.add_argument("--image", type=existing_file, help="a JPEG to send (default: a generated one)")
            gate.add_argument("--load-requests", type=non_negative_int, default=0, help="bounded load smoke")
            gate.add_argument("--load-concurrency", type=positive_int, default=4)
            gate.add_argument(
                "--protect-stack",
                action="append",
                default=[],
                metavar="STACK",
                help="turn termination protection on for this stack, and check it (repeatable; the pipeline "
                "passes the stage's protected stacks: CDK Pipelines ignores termination protection)",
            )
