"""The release records of this checkout (``releases/<id>.json``, ``releases/CURRENT``): read one, point CURRENT at
one, and what changes between two."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from infra.paths import REPO_ROOT
from infra.release_record import (
    CURRENT,
    Release,
    ReleaseError,
    load_current,
    load_release,
    release_path,
)
from scripts.lib.cli import OperatorError


def read_release(path: Path | None, releases_dir: Path) -> Release:
    try:
        return load_release(path) if path else load_current(releases_dir)
    except ReleaseError as exc:
        raise OperatorError(str(exc)) from None


def by_id(releases_dir: Path, release_id: str) -> Release:
    try:
        return load_release(release_path(releases_dir, release_id))
    except ReleaseError as exc:
        raise OperatorError(str(exc)) from None


def write_current(releases_dir: Path, release_id: str) -> None:
    by_id(releases_dir, release_id)  # refuse a pointer to a record that is missing or invalid
    (releases_dir / CURRENT).write_text(release_id + "\n")


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OperatorError(f"cannot read the git commit ({exc}); pass --git-commit") from None
    return out.stdout.strip()


def flat(release: Release) -> dict[str, str]:
    doc = release.model_dump(mode="json")
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            out[prefix] = json.dumps(value) if not isinstance(value, str) else value

    walk("", doc)
    return out


def diff(old: Release, new: Release) -> list[str]:
    a, b = flat(old), flat(new)
    return [
        f"{key}: {a.get(key, '-')} -> {b.get(key, '-')}"
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key) and key not in ("created_at",)
    ]
