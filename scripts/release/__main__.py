"""``python -m scripts.release``: the release command line (each module registers its own subcommands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a path (python scripts/release): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[2])

import scripts.release
from infra.paths import RELEASES_DIR
from scripts.lib import cli
from scripts.lib.cli import command
from scripts.release import cleanup, compare, create, gates, promotion


def build_parser() -> argparse.ArgumentParser:
    top = cli.ArgumentParser(
        prog="python -m scripts.release",
        description=scripts.release.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--region", help="AWS region (default: the release's / the SDK default)")
    top.add_argument("--profile", help="AWS profile")
    top.add_argument("--releases-dir", type=Path, default=RELEASES_DIR, help=argparse.SUPPRESS)
    sub = top.add_subparsers(dest="command", required=True)
    for module in (create, promotion, gates, compare, cleanup):
        module.register(sub)
    return top


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
