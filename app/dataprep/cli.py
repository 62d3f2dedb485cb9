"""Command line: ``python -m app.dataprep --labels PATH|s3://... --out DIR|s3://... [options]``.

``--labels`` is a Ground Truth output manifest, a COCO detection JSON or a YOLO data.yaml, detected from the content
(``--format`` overrides); ``--manifest`` is its older name.

Exit 0 on success; otherwise 2 with one line on stderr saying what was wrong (file, line, field, expectation); 130
and one line on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.contracts.dataset import DATASET_JSON
from app.dataprep.balance import parse_strategy
from app.dataprep.errors import DataprepError
from app.dataprep.labels import (
    DATA_YAML,
    HEAD_BYTES,
    LabelFormat,
    detect_format,
    detect_local,
    format_of_name,
)
from app.dataprep.manifest import ParsedManifest
from app.dataprep.out_check import check_out
from app.dataprep.plan import REJECTS_FILE, Plan, PlanOptions, SizeCheck, build_plan
from app.dataprep.qa import summary_text
from app.dataprep.split import check_fractions, group_keys
from app.dataprep.storage import Destination, ImageSource, fetch_manifest, is_s3, split_s3
from app.dataprep.verify import size_checker
from app.dataprep.writer import write_dataset, write_qa

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser(prog: str = "python -m app.dataprep") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Turn bounding-box labels (a SageMaker Ground Truth output.manifest, a COCO detection JSON or "
        "a YOLO data.yaml) into a balanced, leakage-free YOLO dataset (images/, labels/, data.yaml, dataset.json, "
        "qa/).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--labels",
        help="label file: Ground Truth output.manifest, COCO instances JSON or YOLO data.yaml (or its folder); "
        "local path or s3://bucket/key",
    )
    source.add_argument(
        "--manifest", help="a Ground Truth output.manifest (the same as --labels --format groundtruth)"
    )
    p.add_argument(
        "--format",
        choices=["auto", *(f.value for f in LabelFormat)],
        default="auto",
        help="label format (auto: detected from the content)",
    )
    p.add_argument("--out", required=True, help="dataset root: local folder or s3://bucket/prefix")
    p.add_argument("--image-root", help="local folder holding the images; s3://bucket/key maps to DIR/key")
    p.add_argument(
        "--image-base",
        help="COCO: the folder or s3:// prefix its file_names are relative to (default: the label file's folder)",
    )
    p.add_argument(
        "--label-attribute", help="Ground Truth: label key in the manifest (default: auto-detected)"
    )
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


def labels_uri(args: argparse.Namespace) -> str:
    return str(args.labels or args.manifest)


def _check_format_options(fmt: LabelFormat, args: argparse.Namespace) -> None:
    if args.label_attribute and fmt is not LabelFormat.GROUNDTRUTH:
        raise DataprepError(f"--label-attribute: only for Ground Truth manifests; the labels are {fmt.value}")
    if args.image_base and fmt is not LabelFormat.COCO:
        raise DataprepError(f"--image-base: only for COCO files; the labels are {fmt.value}")


def plan_labels(args: argparse.Namespace, size_check: SizeCheck | None = None) -> Plan:
    """Read the labels in whichever format they are, then plan (the same steps for every format)."""
    from app.dataprep.coco import read_coco
    from app.dataprep.yolo_folder import parent, read_yolo

    uri = labels_uri(args)
    chosen = None if args.format == "auto" else LabelFormat(args.format)
    if chosen is None and (args.manifest or args.label_attribute):
        chosen = LabelFormat.GROUNDTRUTH  # --manifest and --label-attribute name a Ground Truth manifest
    for given in (uri, args.image_base or ""):
        if is_s3(given):
            split_s3(given)  # a malformed s3: URI is refused before anything is read
    local_folder = not is_s3(uri) and Path(uri).is_dir()
    if (
        chosen or format_of_name(uri) or (LabelFormat.YOLO if local_folder or uri.endswith("/") else None)
    ) is (LabelFormat.YOLO):
        _check_format_options(LabelFormat.YOLO, args)
        data_yaml = uri.rstrip("/") + f"/{DATA_YAML}" if local_folder or uri.endswith("/") else uri
        yolo_labels = read_yolo(data_yaml, workers=args.workers)
        return build_plan(
            Path(data_yaml),
            options_from(args),
            source_uri=data_yaml,
            size_check=size_check,
            parsed=yolo_labels,
        )
    local, cleanup = fetch_manifest(uri)
    try:
        fmt = chosen or (detect_local(local) if not is_s3(uri) else _detect_fetched(local, uri))
        _check_format_options(fmt, args)
        parsed: ParsedManifest | None = None
        if fmt is LabelFormat.COCO:
            parsed = read_coco(local, image_base=args.image_base or parent(uri), source=uri)
        return build_plan(local, options_from(args), source_uri=uri, size_check=size_check, parsed=parsed)
    finally:
        cleanup()


def _detect_fetched(local: Path, uri: str) -> LabelFormat:
    with open(local, "rb") as handle:
        return detect_format(handle.read(HEAD_BYTES), uri)


def run(args: argparse.Namespace) -> Plan:
    """Plan, check rejects, write this shard; raises DataprepError with a one-line reason."""
    check_options(args)
    if args.image_root and not Path(args.image_root).is_dir():
        raise DataprepError(f"--image-root {args.image_root}: not a directory")
    source = ImageSource(Path(args.image_root) if args.image_root else None)
    dest = Destination(args.out)
    check = size_checker(source, workers=args.workers) if args.verify_image_size else None
    plan = plan_labels(args, check)
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
