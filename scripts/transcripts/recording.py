"""A recorded transcript: one real run's output, normalised, with when and where it ran and, per line, the format
string of the code that printed it (scripts/transcripts/formats.py). Stored as docs/transcripts/<name>.json; the
markdown blocks are rendered from it."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.paths import REPO_ROOT
from scripts.lib.cli import OperatorError

RECORDINGS = REPO_ROOT / "docs" / "transcripts"


@dataclass
class Recording:
    name: str
    command: str  # as a reader types it
    output: list[str]
    formats: list[str | None] = field(default_factory=list)
    measured_on: str | None = (
        None  # "2026-12-05 23:40 UTC, 2 CPUs, load average 0.42"; None: machine-independent
    )

    @classmethod
    def load(cls, name: str) -> Recording:
        path = RECORDINGS / f"{name}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise OperatorError(
                f"{path.relative_to(REPO_ROOT)}: no recording of {name!r}; make it with "
                f"python -m scripts.transcripts --only {name}"
            ) from None
        return cls(**data)

    def save(self) -> Path:
        RECORDINGS.mkdir(parents=True, exist_ok=True)
        path = RECORDINGS / f"{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path


def measured_on() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load average {load:.2f}"


def normalise(text: str, *, extra: dict[str, str] | None = None) -> list[str]:
    """Machine-specific parts replaced by what a reader of a fresh clone sees: the checkout's path (relative paths),
    the interpreter (``.venv/bin/python``), temporary folders (``<tmp>``); ``extra`` first (longest first)."""
    replacements = {**(extra or {})}
    replacements[sys.executable] = ".venv/bin/python"
    replacements[f"{REPO_ROOT}/"] = ""
    replacements[str(REPO_ROOT)] = "."
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    text = re.sub(rf"{re.escape(tempfile.gettempdir())}/[^\s'\"]+", "<tmp>", text)
    return [line.rstrip() for line in text.rstrip("\n").split("\n")]
