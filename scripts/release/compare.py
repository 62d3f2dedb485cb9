"""``python -m scripts.release compare``: which models, which capture, then the replay and its report.

Defaults (docs/releasing.md, "Comparing with production traffic"):

- candidate: the release that would be promoted, ``releases/CURRENT`` (or ``--candidate``);
- champion: the release the next stage in promotion order (infra/stages.py) last verified - its history, the SSM
  release parameter ``verify`` writes - or the stage's own when it is the last; ``--champion`` names another
  (a release id, a model package ARN, ``s3://.../model.tar.gz`` or a local artifact);
- traffic: the newest ``--last`` requests of the stage's endpoint data capture that the platform did not send
  itself.

Nothing is downloaded before the capture is known to hold requests.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from infra.paths import REPO_ROOT
from infra.release_record import Release, ReleaseError, load_release, release_path
from infra.stack_outputs import ServingOutputs
from scripts.lib.aws import assumed, aws_session, stack_output
from scripts.lib.cli import OperatorError, existing_dir, fraction, non_negative_int, positive_int, stage_name
from scripts.lib.folders import claim_own_folder
from scripts.lib.replay import models
from scripts.lib.replay.capture import CaptureFile, CaptureRead, local_files, newest_requests, s3_files
from scripts.lib.replay.replay import Replay, side
from scripts.lib.replay.report import REPORT_FILE
from scripts.release.promotion import stage_history
from scripts.release.records import by_id, read_release

MARKER = ".release-compare"
DEFAULT_OUT = REPO_ROOT / "build" / "replay"


def _release_or_none(releases_dir: Path, release_id: str) -> Release | None:
    try:
        path = release_path(releases_dir, release_id)
    except ReleaseError:
        return None
    if not path.exists():
        return None
    try:
        return load_release(path)
    except ReleaseError as exc:
        raise OperatorError(str(exc)) from None


def next_stage(stage: str) -> str:
    """The stage after ``stage`` in promotion order (infra/stages.py), or ``stage`` itself when it is the last."""
    from infra.stages import STAGES  # plain data: no aws_cdk import

    names = list(STAGES)
    index = names.index(stage)
    return names[min(index + 1, len(names) - 1)]


def default_champion(stage: str, last_verified: Callable[[str], Release | None]) -> models.ModelRef:
    serving = next_stage(stage)
    release = last_verified(serving)
    if release is None:
        raise OperatorError(
            f"{serving} has no release in its history yet (nothing verified there): pass --champion "
            "<release id | model package ARN | s3://.../model.tar.gz>"
        )
    return models.of_release(release)


def capture_prefix(sagemaker: Any, endpoint: str) -> tuple[str, str]:
    """(bucket, ``<prefix>/<endpoint>/``) of the endpoint's data capture (DescribeEndpoint's DataCaptureConfig)."""
    capture = sagemaker.describe_endpoint(EndpointName=endpoint).get("DataCaptureConfig") or {}
    destination = capture.get("DestinationS3Uri", "")
    if not capture.get("EnableCapture") or not destination.startswith("s3://"):
        raise OperatorError(
            f"endpoint {endpoint} captures no data (DataCaptureConfig {capture or 'absent'}): set the stage's "
            "endpoint.data_capture_percent above 0 and deploy, then let traffic come in"
        )
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, (f"{prefix}/" if prefix else "") + f"{endpoint}/"


def _capture(args: argparse.Namespace, stage: Any) -> tuple[str, str, Callable[[], Iterator[CaptureFile]]]:
    """(endpoint, where the capture is, its files newest first): the stage endpoint's data capture in S3, or
    ``--capture DIR``, a capture on disk (an ``aws s3 sync`` of it, or the demo's)."""
    if args.capture:
        return f"(the capture in {args.capture})", str(args.capture), lambda: local_files(args.capture)
    endpoint = stack_output(
        stage.client("cloudformation"), f"{args.stage}-Serving", ServingOutputs.ENDPOINT_NAME
    )
    bucket, prefix = capture_prefix(stage.client("sagemaker"), endpoint)
    capture_s3 = stage.client("s3")
    return endpoint, f"s3://{bucket}/{prefix}", lambda: s3_files(capture_s3, bucket, prefix)


def compare(
    args: argparse.Namespace,
    *,
    own: Any,
    stage: Any,
    current: Callable[[], Release],
    last_verified: Callable[[str], Release | None],
) -> int:
    """``own``: the caller's session (model store, registry); ``stage``: a session in the stage's account (endpoint,
    capture); ``current``: the current release; ``last_verified``: the release a stage last verified, or None."""
    from scripts.release.checks import package_facts

    def resolve(text: str, option: str) -> models.ModelRef:
        return models.resolve(
            text,
            option=option,
            release_by_id=lambda rid: _release_or_none(args.releases_dir, rid),
            package_model_data=lambda arn: package_facts(own, arn)[1],
        )

    candidate = resolve(args.candidate, "--candidate") if args.candidate else models.of_release(current())
    champion = (
        resolve(args.champion, "--champion") if args.champion else default_champion(args.stage, last_verified)
    )
    endpoint, capture, files = _capture(args, stage)
    if next(files(), None) is None:
        raise OperatorError(f"{capture}: no captured requests yet (data capture files *.jsonl)")
    out: Path = args.out or DEFAULT_OUT / args.stage.lower()
    claim_own_folder(out, MARKER, option="--out", command="python -m scripts.release compare")
    shutil.rmtree(out / "disagreements", ignore_errors=True)  # the previous run's images (the folder is ours)
    with tempfile.TemporaryDirectory() as tmp:
        s3 = own.client("s3")
        print(
            f"replaying up to the newest {args.last} requests of {capture} through both models ...",
            flush=True,
        )
        replay = Replay(
            candidate=models.open_model(candidate, s3=s3, workdir=Path(tmp), name="candidate"),
            champion=models.open_model(champion, s3=s3, workdir=Path(tmp), name="champion"),
            iou=args.iou,
            keep=args.keep,
        )
        if args.conf is not None:
            replay.options = replay.options.model_copy(update={"conf": args.conf})
        read = CaptureRead(files=[])
        replay.run(newest_requests(files(), args.last, read))
    report = finish(
        replay,
        read,
        args=args,
        endpoint=endpoint,
        capture=capture,
        out=out,
        refs=(candidate, champion),
    )
    print(report.render())
    print(f"wrote {out / REPORT_FILE} and {len(report.disagreements)} image(s) under {out / 'disagreements'}")
    return 0


def finish(
    replay: Replay,
    read: CaptureRead,
    *,
    args: argparse.Namespace,
    endpoint: str,
    capture: str,
    out: Path,
    refs: tuple[models.ModelRef, models.ModelRef],
) -> Any:
    """Draw the disagreements and write ``<out>/replay.json``; the report."""
    candidate, champion = refs
    disagreements = replay.write_disagreements(out, (candidate.label, champion.label))
    report = replay.report(
        stage=args.stage,
        endpoint=endpoint,
        capture=capture,
        sides=(
            side(candidate.label, candidate.model_data, candidate.release_id, replay.candidate),
            side(champion.label, champion.model_data, champion.release_id, replay.champion),
        ),
        asked=args.last,
        skipped_synthetic=read.synthetic,
        files=len(read.files),
        disagreements=disagreements,
    )
    (out / REPORT_FILE).write_text(report.model_dump_json(indent=2) + "\n")
    return report


def cmd_compare(args: argparse.Namespace) -> int:
    own = aws_session(profile=args.profile, region=args.region)

    def last_verified(stage: str) -> Release | None:
        history = stage_history(own.client("ssm"), stage)
        return by_id(args.releases_dir, history[-1]["Value"]) if history else None

    return compare(
        args,
        own=own,
        stage=assumed(own, args.stage_role_arn, name=f"compare-{args.stage}"),
        current=lambda: read_release(None, args.releases_dir),
        last_verified=last_verified,
    )


def register(sub: Any) -> None:
    compare_ = sub.add_parser(
        "compare",
        help="replay a stage's captured requests through candidate and champion; label-free agreement",
    )
    compare_.add_argument("--stage", required=True, type=stage_name, help="whose data capture to replay")
    compare_.add_argument(
        "--last", type=positive_int, default=200, help="the newest N requests (not synthetic)"
    )
    compare_.add_argument("--out", type=Path, help="report and images (default build/replay/<stage>)")
    compare_.add_argument(
        "--candidate",
        help="release id, model package ARN, s3://.../model.tar.gz or local artifact "
        "(default: the current release)",
    )
    compare_.add_argument(
        "--champion", help="the same forms (default: the release the next stage last verified)"
    )
    compare_.add_argument(
        "--iou", type=fraction, default=0.5, help="boxes match at this IoU or more (same class)"
    )
    compare_.add_argument("--conf", type=fraction, help="confidence threshold (default: the serving default)")
    compare_.add_argument(
        "--keep", type=non_negative_int, default=12, help="images drawn where they disagree most"
    )
    compare_.add_argument(
        "--stage-role-arn", help="assume this role for the stage's account (capture, endpoint)"
    )
    compare_.add_argument(
        "--capture",
        type=existing_dir,
        help="a capture on disk instead of the stage endpoint's (<variant>/yyyy/mm/dd/hh/*.jsonl, e.g. "
        "aws s3 sync of <capture uri>/<endpoint>/, or the demo's <workdir>/capture)",
    )
    compare_.set_defaults(func=cmd_compare)
