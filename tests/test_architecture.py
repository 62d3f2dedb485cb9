"""The dependency rules of DESIGN.md section 1, checked on the code itself (static imports) and at run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from infra.paths import REPO_ROOT

RUNTIME_PARTS = ("dataprep", "training", "serving", "launcher")


def _imports(package: str) -> dict[str, set[str]]:
    """Module file -> every module it imports (absolute names, top of tree included)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        found[str(path.relative_to(REPO_ROOT))] = _imported(path)
    return found


def _imported(path: Path, *, members: bool = False) -> set[str]:
    """The absolute module names ``path`` imports, anywhere in the file; with ``members``, ``from pkg import x`` also
    counts as ``pkg.x`` (x may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if members:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in _imports(package).items()
        for name in names
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    )


def test_runtime_code_never_imports_cdk_or_infra() -> None:
    assert _offenders("app", ("aws_cdk", "constructs", "cdk_nag", "infra")) == []


def test_serving_never_imports_torch_or_ultralytics() -> None:
    assert _offenders("app/serving", ("torch", "torchvision", "ultralytics")) == []


def test_infra_imports_only_the_contracts_of_the_runtime_code() -> None:
    assert _offenders("infra", tuple(f"app.{part}" for part in RUNTIME_PARTS)) == []


# Training reads its environment once (app/training/environment.py); the DDP rank is read in each worker process
# (callbacks.py), the offline setup writes ultralytics' own variables before importing it (offline.py), and the int8
# step hands its environment on to the child process it runs in (int8_step.py; it reads no setting from it).
TRAINING_ENVIRONMENT_READERS = {"environment.py", "callbacks.py", "offline.py", "int8_step.py"}


def test_training_reads_the_environment_in_one_place() -> None:
    readers = sorted(
        path.name
        for path in (REPO_ROOT / "app" / "training").glob("*.py")
        if any(
            isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        )
    )
    assert set(readers) <= TRAINING_ENVIRONMENT_READERS, readers


def test_contracts_stay_light_enough_for_the_lambda() -> None:
    heavy = ("torch", "ultralytics", "numpy", "pandas", "PIL", "onnxruntime", "boto3", "cv2", "matplotlib")
    assert _offenders("app/contracts", heavy) == []


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("app.serving.__main__", ("torch", "ultralytics")),
        ("app.launcher.runner", ("torch", "ultralytics", "pandas", "numpy")),
        ("infra.app", ("torch", "ultralytics", "onnxruntime")),
    ],
)
def test_importing_an_entrypoint_loads_none_of_the_forbidden_packages(
    module: str, absent: tuple[str, ...]
) -> None:
    code = f"import sys, importlib; importlib.import_module({module!r}); print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def _module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports anywhere (late imports inside functions count: a circle
    hidden in a function is still a circle). ``from pkg import mod`` is an import of ``pkg.mod``."""
    paths = sorted((REPO_ROOT / package).rglob("*.py"))
    modules = {_module_name(str(path.relative_to(REPO_ROOT))) for path in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        module = _module_name(str(path.relative_to(REPO_ROOT)))
        graph[module] = (_imported(path, members=True) & modules) - {module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["scripts", "infra", "app"])
def test_no_import_circles(package: str) -> None:
    """Modules that import each other (even through a late import) cannot be read, tested or moved alone."""
    graph = _import_graph(package)
    assert _circles(graph) == []


def test_script_libraries_never_import_a_command() -> None:
    """scripts/lib is what the commands share: a library importing a command (as release checks once imported
    verify_endpoint) ties the commands together through the back door."""
    commands = {f"scripts.{p.stem}" for p in (REPO_ROOT / "scripts").glob("*.py") if p.stem != "__init__"}
    commands |= {f"scripts.{p.parent.name}" for p in (REPO_ROOT / "scripts").glob("*/__main__.py")}
    offenders = {
        module: sorted(
            n for n in names if n in commands or n.split(".")[:2] in [c.split(".") for c in commands]
        )
        for module, names in _imports("scripts/lib").items()
    }
    assert {m: n for m, n in offenders.items() if n} == {}


def test_no_operator_module_over_400_lines() -> None:
    """A command that grows becomes a package (scripts/release/), not a longer file."""
    long = {
        str(p.relative_to(REPO_ROOT)): n
        for p in (REPO_ROOT / "scripts").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_every_contract_is_used_by_runtime_code() -> None:
    """app/contracts holds what crosses a seam with runtime code; a contract only infra and scripts read belongs
    in infra (as the release record, stack outputs and image URIs do)."""
    runtime = {
        name
        for part in RUNTIME_PARTS
        for path in (REPO_ROOT / "app" / part).rglob("*.py")
        for name in _imported(path, members=True)
    }
    contracts = {f"app.contracts.{p.stem}" for p in (REPO_ROOT / "app" / "contracts").glob("*.py")}
    contracts.discard("app.contracts.__init__")
    unused = sorted(c for c in contracts if c not in runtime)
    assert unused == []
