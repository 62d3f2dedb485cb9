"""Command line: ``python -m app.dataprep --manifest PATH|s3://... --out DIR|s3://... [options]``.

Exit 0 on success; otherwise 2 with one line on stderr saying what was wrong (file, line, field, expectation); 130
and one line on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from app.contracts.dataset import DATASET_JSON
from app.dataprep.balance import parse_strategy
from app.dataprep.errors import DataprepError
from app.dataprep.out_check import check_out
from app.dataprep.plan import REJECTS_FILE, Plan, PlanOptions, build_plan
from app.dataprep.qa import summary_text
from app.dataprep.split import check_fractions, group_keys
from app.dataprep.storage import Destination, ImageSource, fetch_manifest
from app.dataprep.verify import size_checker
from app.dataprep.writer import write_dataset, write_qa

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser(prog: str = "python -m app.dataprep") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Turn a SageMaker Ground Truth bounding-box output.manifest into a balanced, leakage-free "
        "YOLO dataset (images/, labels/, data.yaml, dataset.json, qa/).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--manifest", required=True, help="output.manifest: local path or s3://bucket/key")
    p.add_argument("--out", required=True, help="dataset root: local folder or s3://bucket/prefix")
    p.add_argument("--image-root", help="local folder holding the images; s3://bucket/key maps to DIR/key")
    p.add_argument("--label-attribute", help="label key in the manifest (default: auto-detected)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of images in val")
    p.add_argument(
        "--test-fraction", type=float, default=0.0, help="share of images in test (0 = no test split)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and balancing order")
    p.add_argument("--group-by", help="keep related images in one split: 'prefix' or 'regex:PATTERN(group)'")
    p.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="STRATEGY",
        help="train-split balancing, repeatable, in order: cap-images=N, cap-instances=N, max-ratio=R, "
        "oversample[=R], class-weights",
    )
    p.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.05,
        help="fail (exit 2) when more than this share of records is rejected or trimmed",
    )
    p.add_argument("--verify-image-size", action="store_true", help="read each image and check its real size")
    p.add_argument(
        "--link", action="store_true", help="hard-link local images instead of copying when possible"
    )
    p.add_argument("--workers", type=int, default=16, help="parallel image copies")
    p.add_argument("--shard-index", type=int, default=0, help="this worker's shard of the image copies")
    p.add_argument("--shard-count", type=int, default=1, help="number of workers sharing the copies")
    p.add_argument("--dry-run", action="store_true", help="plan and print the summary; write nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return p


def options_from(args: argparse.Namespace) -> PlanOptions:
    return PlanOptions(
        label_attribute=args.label_attribute,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        group_by=args.group_by,
        balance=tuple(args.balance),
        max_reject_fraction=args.max_reject_fraction,
    )


def check_options(args: argparse.Namespace) -> None:
    """Every check that needs no data (so a launcher can run them before it pays for an instance)."""
    import pandas as pd

    if args.workers < 1:
        raise DataprepError(f"--workers {args.workers}: expected >= 1")
    if args.shard_count < 1 or not 0 <= args.shard_index < args.shard_count:
        raise DataprepError(
            f"--shard-index {args.shard_index} / --shard-count {args.shard_count}: expected 0 <= index < count"
        )
    for spec in args.balance:
        parse_strategy(spec)
    if not 0 <= args.max_reject_fraction <= 1:
        raise DataprepError(f"--max-reject-fraction {args.max_reject_fraction}: expected a number in [0, 1]")
    check_fractions(args.val_fraction, args.test_fraction)
    group_keys(pd.Series([], dtype=object), args.group_by)


def run(args: argparse.Namespace) -> Plan:
    """Plan, check rejects, write this shard; raises DataprepError with a one-line reason."""
    from pathlib import Path

    check_options(args)
    if args.image_root and not Path(args.image_root).is_dir():
        raise DataprepError(f"--image-root {args.image_root}: not a directory")
    source = ImageSource(Path(args.image_root) if args.image_root else None)
    dest = Destination(args.out)
    local_manifest, cleanup = fetch_manifest(args.manifest)
    try:
        check = size_checker(source, workers=args.workers) if args.verify_image_size else None
        plan = build_plan(local_manifest, options_from(args), source_uri=args.manifest, size_check=check)
    finally:
        cleanup()
    if args.dry_run:
        return plan
    check_out(plan, dest)  # before anything is written: never mix this dataset into another one
    if plan.reject_fraction > plan.options.max_reject_fraction:
        write_qa(plan, dest)  # keep the evidence before failing
        plan.check_rejects(dest.location(REJECTS_FILE))
    result = write_dataset(
        plan,
        dest,
        source,
        shard_index=args.shard_index,
        shard_count=args.shard_count,
        workers=args.workers,
        progress=not args.quiet and sys.stderr.isatty(),
        link=args.link,
    )
    if not result.committed:
        print(
            f"shard {args.shard_index}/{args.shard_count} done; {DATASET_JSON} follows when the last shard finishes"
        )
    return plan


def main(argv: Sequence[str] | None = None, prog: str = "python -m app.dataprep") -> int:
    args = build_parser(prog).parse_args(argv)
    started = time.perf_counter()
    try:
        plan = run(args)
    except DataprepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"error: interrupted (Ctrl-C); {args.out} may hold a partial dataset", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        # AWS/IO failures outside our checks: still one line, with the type for searching logs
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | ClientError | OSError):
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        raise
    if not args.quiet:
        print(summary_text(plan), end="")
    action = "planned" if args.dry_run else f"wrote shard {args.shard_index}/{args.shard_count} to {args.out}"
    print(
        f"{action}: {len(plan.images)} images, {len(plan.boxes)} boxes, version {plan.version} "
        f"({time.perf_counter() - started:.1f}s)"
    )
    return 0
