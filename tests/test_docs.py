"""The manual holds together: README stays short, every relative link (file and #anchor) in README.md and docs/ leads
somewhere, and every test named by its pytest node id exists. (Command lines: tests/scripts/test_readme_commands.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
MANUAL = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 400  # the short path from clone to Prod; the reference lives in docs/

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_NODE_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _prose(path: Path) -> str:
    """The file without its fenced code blocks (a ``](`` in code is not a link)."""
    return re.sub(r"(?ms)^```.*?^```", "", path.read_text())


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lowercase, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_anchor(m[1]) for m in re.finditer(r"(?m)^#{1,6} (.+)$", _prose(path))}


def test_readme_is_the_short_path() -> None:
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("path", MANUAL, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_leads_somewhere(path: Path) -> None:
    broken = []
    for target in _LINK.findall(_prose(path)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(REPO_ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(REPO_ROOT)}")
    assert broken == []


@pytest.mark.parametrize("path", MANUAL, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_test_named_by_node_id_exists(path: Path) -> None:
    missing = [
        f"{file}::{name}"
        for file, name in _NODE_ID.findall(path.read_text())
        if not (REPO_ROOT / file).exists()
        or not re.search(rf"(?m)^def {name}\(", (REPO_ROOT / file).read_text())
    ]
    assert missing == []


def test_docs_index_links_every_page() -> None:
    linked = {
        Path(t.partition("#")[0]).name for t in _LINK.findall(README.read_text()) if t.startswith("docs/")
    }
    assert {p.name for p in MANUAL[1:]} <= linked
