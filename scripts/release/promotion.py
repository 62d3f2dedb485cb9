"""Moving the ``releases/CURRENT`` pointer and what it rests on: show and diff records, approve or reject a model
version, promote a release, a stage's history, roll a stage back."""

from __future__ import annotations

import argparse
from typing import Any

from infra.release_record import current_release_id
from infra.stack_outputs import DataOutputs
from scripts.lib.aws import aws_session, stack_output
from scripts.lib.cli import OperatorError, positive_int, stage_name
from scripts.release.records import by_id, diff, read_release, write_current


def cmd_show(args: argparse.Namespace) -> int:
    release = (
        by_id(args.releases_dir, args.release_id)
        if args.release_id
        else read_release(None, args.releases_dir)
    )
    model = release.model
    print(
        f"release   {release.release_id}  (created {release.created_at:%Y-%m-%d %H:%M} UTC, commit {release.git_commit[:12]})"
    )
    print(f"model     {model.package_group} v{model.package_version}  {model.model_data_uri}")
    print(f"          sha256 {model.sha256}  dataset {model.dataset_version}  version {model.card_version}")
    print(f"          precisions {', '.join(model.precisions)}")
    print("metrics   " + ", ".join(f"{k}={v:g}" for k, v in sorted(model.metrics.items())))
    for name, uri in release.image_uris().items():
        print(f"image     {name:<10} {uri}")
    if release.notes:
        print(f"notes     {release.notes}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    old = by_id(args.releases_dir, args.old)
    new = by_id(args.releases_dir, args.new) if args.new else read_release(None, args.releases_dir)
    lines = diff(old, new)
    print("\n".join(lines) if lines else f"{old.release_id} and {new.release_id} deploy the same bytes")
    return 0


def cmd_approval(args: argparse.Namespace) -> int:
    from sagemaker.core.resources import ModelPackage

    session = aws_session(profile=args.profile, region=args.region)
    cloudformation = session.client("cloudformation")
    group = stack_output(cloudformation, f"{args.stage}-Data", DataOutputs.MODEL_PACKAGE_GROUP_NAME)
    target = None
    for package in ModelPackage.get_all(
        model_package_group_name=group, session=session, region=session.region_name
    ):
        if int(package.model_package_version) == args.version:
            target = package
            break
    if target is None:
        raise OperatorError(
            f"{group} has no version {args.version} (python -m scripts.training versions --stage ...)"
        )
    status = "Approved" if args.command == "approve" else "Rejected"
    target.update(
        model_approval_status=status, approval_description=(args.reason or f"{status} by an operator")[:1024]
    )
    print(f"{group} v{args.version}: {status}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    release = by_id(args.releases_dir, args.release_id)
    before = current_release_id(args.releases_dir)
    write_current(args.releases_dir, release.release_id)
    print(f"releases/CURRENT: {before} -> {release.release_id}")
    print(
        "next: git add releases && git commit -m 'release " + release.release_id + "' && git push  "
        "(the pipeline deploys it Dev -> Staging -> Prod through the gates)"
    )
    print(
        f"without a pipeline: npx cdk deploy '<Stage>/*' -c release={release.release_id}, one stage at a time"
    )
    return 0


def stage_history(ssm: Any, stage: str) -> list[dict[str, Any]]:
    from infra.constructs.training_names import release_parameter_name

    rows: list[dict[str, Any]] = []
    paginator = ssm.get_paginator("get_parameter_history")
    for page in paginator.paginate(Name=release_parameter_name(stage)):
        rows.extend(page["Parameters"])
    return sorted(rows, key=lambda r: r["Version"])


def cmd_history(args: argparse.Namespace) -> int:
    session = aws_session(profile=args.profile, region=args.region)
    rows = stage_history(session.client("ssm"), args.stage)
    if not rows:
        print(f"{args.stage}: no release deployed yet")
    for row in rows:
        when = row["LastModifiedDate"]
        print(
            f"v{row['Version']:<4} {when:%Y-%m-%d %H:%M} {row['Value']:<24} {row.get('LastModifiedUser', '')}"
        )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.to:
        target = args.to
    else:
        session = aws_session(profile=args.profile, region=args.region)
        deployed = [r["Value"] for r in stage_history(session.client("ssm"), args.stage)]
        earlier = [r for r in deployed[:-1] if r != (deployed[-1] if deployed else None)]
        if not earlier:
            raise OperatorError(
                f"{args.stage} has no earlier release to roll back to (history: {deployed or 'none'})"
            )
        target = earlier[-1]
    release = by_id(args.releases_dir, target)
    before = current_release_id(args.releases_dir)
    write_current(args.releases_dir, release.release_id)
    print(f"releases/CURRENT: {before} -> {release.release_id} (rolling {args.stage} back)")
    print(
        f"through the pipeline: git add releases/CURRENT && git commit -m 'roll back to {target}' && git push"
    )
    print(f"now, this stage only: npx cdk deploy '{args.stage}/*' -c release={target}")
    return 0


def register(sub: Any) -> None:
    show = sub.add_parser("show", help="print a release (default: the current one)")
    show.add_argument("release_id", nargs="?")
    show.set_defaults(func=cmd_show)

    diff_ = sub.add_parser("diff", help="what changes between two releases (default new: the current one)")
    diff_.add_argument("old")
    diff_.add_argument("new", nargs="?")
    diff_.set_defaults(func=cmd_diff)

    for name, what in (("approve", "Approved"), ("reject", "Rejected")):
        approval = sub.add_parser(name, help=f"mark a model package version {what} in a stage's registry")
        approval.add_argument("--stage", required=True, type=stage_name)
        approval.add_argument("--version", required=True, type=positive_int, help="the version number")
        approval.add_argument("--reason", help="kept as the approval description")
        approval.set_defaults(func=cmd_approval)

    promote = sub.add_parser("promote", help="make a release current (the pipeline deploys it Dev -> Prod)")
    promote.add_argument("release_id")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="make the stage's previous release current again")
    rollback.add_argument("--stage", required=True, type=stage_name)
    rollback.add_argument("--to", help="this release instead of the one the stage ran before")
    rollback.set_defaults(func=cmd_rollback)

    history = sub.add_parser("history", help="the releases a stage has run, oldest first")
    history.add_argument("--stage", required=True, type=stage_name)
    history.set_defaults(func=cmd_history)
