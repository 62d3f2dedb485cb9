"""The Node.js that package.json pins runs the CDK: no command prints the CDK's end-of-life banner for the machine's
own Node.js, whatever PATH says (infra/__init__.py points jsii at node_modules/.bin/node)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from infra.paths import JSII_NODE, PINNED_NODE, REPO_ROOT

BANNER = "end-of-life"


def _without_pinned_node_on_path() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"JSII_NODE", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"}
    }
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if "node_modules" not in p)
    return env


def test_package_json_pins_the_node_runtime_exactly() -> None:
    wanted = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["node"]
    version = subprocess.run(
        [PINNED_NODE, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == f"v{wanted}"
    wrapped = subprocess.run(
        [JSII_NODE, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert wrapped == version  # what the CDK's jsii kernel runs


def test_the_cdk_runs_on_the_pinned_node_without_the_end_of_life_banner() -> None:
    code = "import infra, os, aws_cdk; aws_cdk.App().synth(); print(os.environ['JSII_NODE'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=_without_pinned_node_on_path(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert BANNER not in result.stdout + result.stderr
    assert result.stdout.strip() == str(JSII_NODE)
