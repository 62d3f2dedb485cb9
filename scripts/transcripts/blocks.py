"""Marked blocks in the manual: ``<!-- transcript: NAME -->`` ... ``<!-- /transcript -->``, whose content is generated
(scripts/transcripts/catalog.py renders it from docs/transcripts/NAME.json); everything outside them is prose."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.paths import REPO_ROOT
from scripts.lib.cli import OperatorError

MANUAL = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_OPEN = re.compile(r"^<!-- transcript: ([\w-]+) -->$")
_CLOSE = "<!-- /transcript -->"


class BlockError(OperatorError):
    """A marker that does not pair up: file, line and what was expected."""


@dataclass(frozen=True)
class Block:
    path: Path
    name: str
    line: int  # of the opening marker, 1-based
    content: str  # between the markers, without them


def _where(path: Path, line: int) -> str:
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    return f"{shown}:{line}"


def blocks(path: Path) -> list[Block]:
    found, lines = [], path.read_text().split("\n")
    opened: tuple[str, int] | None = None
    for number, line in enumerate(lines, start=1):
        if match := _OPEN.match(line):
            if opened:
                raise BlockError(
                    f"{_where(path, number)}: expected '{_CLOSE}' before another transcript marker"
                )
            opened = (match[1], number)
        elif line == _CLOSE:
            if not opened:
                raise BlockError(f"{_where(path, number)}: '{_CLOSE}' without an opening transcript marker")
            name, start = opened
            found.append(Block(path, name, start, "\n".join(lines[start : number - 1])))
            opened = None
    if opened:
        raise BlockError(f"{_where(path, opened[1])}: transcript {opened[0]!r} has no closing '{_CLOSE}'")
    return found


def rewrite(path: Path, render: Callable[[str], str]) -> bool:
    """Replace every block's content in ``path`` with ``render(name)``; True when the file changed."""
    text = path.read_text()
    lines, out, skipping = text.split("\n"), [], False
    blocks(path)  # markers pair up, or BlockError names where not
    for line in lines:
        if match := _OPEN.match(line):
            out += [line, render(match[1])]
            skipping = True
        elif line == _CLOSE:
            out.append(line)
            skipping = False
        elif not skipping:
            out.append(line)
    new = "\n".join(out)
    if new != text:
        path.write_text(new)
    return new != text
