"""SageMaker Processing entrypoint (the dataprep container's ENTRYPOINT): the CLI with Processing defaults.

Defaults follow SageMaker Processing paths: the labels are ``--labels`` (scripts/dataprep_job.py passes the s3:// URI)
or else the single file under ``/opt/ml/processing/input/manifest``, images (when given as an input) under ``/opt/ml/processing/input/images``,
output to ``/opt/ml/processing/output``, which SageMaker uploads. With several instances, each takes its shard
from ``/opt/ml/config/resourceconfig.json`` (its host's position among the hosts); the plan is the same on all.
Several hosts need ``--out s3://...`` (e.g. ``DATAPREP_OUT``): shards commit the dataset through done markers in the
shared output, and each host's local output folder only ever holds its own shard.
Options come from container arguments, or from ``DATAPREP_<OPTION>`` environment variables (e.g.
``DATAPREP_VAL_FRACTION=0.1``, ``DATAPREP_BALANCE="max-ratio=3 class-weights"``); arguments win.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from app.dataprep.cli import EXIT_ERROR, build_parser, main
from app.dataprep.storage import is_s3

PROCESSING = Path("/opt/ml/processing")
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
_MULTI = {"balance"}
_FLAGS = {"verify_image_size", "link", "dry_run", "quiet"}


def _env_args(env: Mapping[str, str], given: set[str]) -> list[str]:
    out: list[str] = []
    for action in build_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = env.get(f"DATAPREP_{action.dest.upper()}")
        flag = action.option_strings[0]
        if value is None or flag in given:
            continue
        if action.dest in _FLAGS:
            if value.lower() in ("1", "true", "yes"):
                out.append(flag)
        elif action.dest in _MULTI:
            for item in shlex.split(value):
                out += [flag, item]
        else:
            out += [flag, value]
    return out


def _single_file(folder: Path) -> str | None:
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return str(files[0]) if len(files) == 1 else None


def processing_argv(
    argv: Sequence[str],
    env: Mapping[str, str],
    root: Path = PROCESSING,
    resource_config: Path = RESOURCE_CONFIG,
) -> list[str] | str:
    """The CLI argv for this Processing instance, or a one-line reason why it cannot be built."""
    args = list(argv)
    given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    args += _env_args(env, given)
    given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    if "--manifest" not in given and "--labels" not in given:
        manifest = _single_file(root / "input" / "manifest")
        if manifest is None:
            return f"{root / 'input' / 'manifest'}: expected exactly one manifest file (or pass --manifest)"
        args += ["--manifest", manifest]
    if "--out" not in given:
        args += ["--out", str(root / "output")]
    if "--image-root" not in given and (root / "input" / "images").is_dir():
        args += ["--image-root", str(root / "input" / "images")]
    if "--shard-count" not in given and resource_config.is_file():
        config = json.loads(resource_config.read_text())
        hosts = sorted(config.get("hosts", []))
        if len(hosts) > 1 and config.get("current_host") in hosts:
            args += [
                "--shard-index",
                str(hosts.index(config["current_host"])),
                "--shard-count",
                str(len(hosts)),
            ]
    return _check_shared_out(args)


def _check_shared_out(args: list[str]) -> list[str] | str:
    """Sharded runs commit dataset.json once all shards' markers are visible: only a shared (S3) --out shows them."""
    value = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--out", "--shard-count")}
    count = value.get("--shard-count", "1")
    out = value.get("--out", "")
    if count.isdigit() and int(count) > 1 and not is_s3(out):
        return (
            f"--out {out}: {count} hosts share the work, so --out must be an s3:// prefix (set DATAPREP_OUT); "
            "a host's local output only holds its own shard, so no host could see all shards done and commit "
            "dataset.json"
        )
    return args


def entrypoint(argv: Sequence[str] | None = None) -> int:
    # the two path overrides exist for local runs and tests of the container entrypoint (a fake /opt/ml)
    root = Path(os.environ.get("DATAPREP_PROCESSING_ROOT", PROCESSING))
    config = Path(os.environ.get("DATAPREP_RESOURCE_CONFIG", RESOURCE_CONFIG))
    built = processing_argv(
        sys.argv[1:] if argv is None else argv, os.environ, root=root, resource_config=config
    )
    if isinstance(built, str):
        print(f"error: {built}", file=sys.stderr)
        return EXIT_ERROR
    return main(built, prog="dataprep (SageMaker Processing)")


if __name__ == "__main__":
    raise SystemExit(entrypoint())
