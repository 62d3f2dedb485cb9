"""The format strings a body of code can print, read from its source: how a recorded transcript's lines are tied to
the code without re-running it.

Every f-string, ``str.format`` string and ``%``-format string in the given modules becomes one pattern per line:
literal text kept, each replacement field a wildcard. A recorded line is *explained* by the pattern with the most
literal text that matches it in full (leading indentation ignored: callers indent what their children print). At
record time the explaining pattern's text is stored next to the line; the check then asks, per line, whether the code
still has that exact pattern and whether it still matches: a reworded print, a renamed field, a new separator all fail
it, wherever the print moved (modules are scanned as packages, so splitting a file changes nothing).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FIELD = "\x00"  # a replacement field in a pattern's text (never in printed text)
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[sdirfgexXc%]")
_BRACES = re.compile(r"\{[^{}]*\}")
_MIN_LETTERS = (
    3  # a pattern must carry this many literal letters to explain a line ("{}.{}.{}" explains nothing)
)


@dataclass(frozen=True)
class Pattern:
    text: str  # the line with each replacement field as FIELD

    @property
    def literal(self) -> int:
        return sum(1 for c in self.text if c != FIELD and not c.isspace())

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        parts = self.text.strip().split(FIELD)
        return re.compile(".*?".join(re.escape(p) for p in parts))

    def explains(self, line: str) -> bool:
        return self.regex.fullmatch(line.strip()) is not None

    def shown(self) -> str:
        return self.text.strip().replace(FIELD, "{}")


def _lines(text: str) -> Iterable[str]:
    for line in text.split("\n"):
        if sum(1 for c in line if c.isalpha()) >= _MIN_LETTERS:
            yield line


def _from_joined(node: ast.JoinedStr) -> str:
    out = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.append(value.value)
        else:
            out.append(FIELD)
    return "".join(out)


def _from_constant(text: str) -> str:
    return _BRACES.sub(FIELD, _PERCENT.sub(FIELD, text))


def patterns_in_source(source: str) -> set[Pattern]:
    tree = ast.parse(source)
    found: set[Pattern] = set()
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(v) for v in node.values)
            found.update(Pattern(line) for line in _lines(_from_joined(node)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstring:
            found.update(Pattern(line) for line in _lines(_from_constant(node.value)))
    return found


def module_files(module: str) -> list[Path]:
    """The source files of a module, or of every module of a package."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"no module {module!r}")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:
        return sorted(p for p in origin.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [origin]


_OWN = Path(__file__).resolve().parent  # this package's strings quote what others print: never a source


@functools.cache
def patterns(modules: tuple[str, ...]) -> frozenset[Pattern]:
    found: set[Pattern] = set()
    for module in modules:
        for path in module_files(module):
            if not path.resolve().is_relative_to(_OWN):
                found |= patterns_in_source(path.read_text())
    return frozenset(found)


def explain(line: str, modules: tuple[str, ...]) -> Pattern | None:
    """The pattern with the most literal text that matches ``line``; None for a blank or unexplained line."""
    if not line.strip():
        return None
    candidates = [p for p in patterns(modules) if p.explains(line)]
    return max(candidates, key=lambda p: (p.literal, p.text), default=None)


def drifted(lines: list[str], formats: list[str | None], modules: tuple[str, ...]) -> list[str]:
    """One message per recorded line whose recorded format the code no longer has, or that no longer matches it."""
    known = {p.shown(): p for p in patterns(modules)}
    problems = []
    for number, (line, shown) in enumerate(zip(lines, formats, strict=True), start=1):
        if shown is None:
            continue
        pattern = known.get(shown)
        if pattern is None:
            problems.append(f"line {number} {line.strip()!r}: the code no longer prints the format {shown!r}")
        elif not pattern.explains(line):
            problems.append(f"line {number} {line.strip()!r}: does not match the format {shown!r}")
    return problems
