"""Ctrl-C as a terminal sends it - SIGINT to the whole process group, children included - to a representative set of
commands while they work: one line on stderr and exit 130, nothing left behind. And the path form people type
(``python scripts/x.py``) runs the command instead of failing on an import.

Operator commands: synth (the CDK's node process is in the group and dies with its own error), synth as a path, demo
(a step runs as a child process). Entrypoints: app.training mid-epoch (ultralytics and torch frames), app.serving with
one worker (uvicorn drains, then re-raises the Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.paths import REPO_ROOT
from tests.fixtures.artifacts import (
    FAST_HYPERPARAMETERS,
    make_opt_ml,
    pretrained_checkpoint,
    training_command,
)

pytestmark = pytest.mark.slow

PY = sys.executable


def _env() -> dict[str, str]:
    """The session's environment, the checkout importable; no PYTHONPATH for the path form (it must not need it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@dataclass
class Interrupted:
    returncode: int
    stdout: str
    stderr_before: list[str]  # stderr lines that arrived before Ctrl-C
    stderr_after: list[str]  # ... and after it: the one line


def interrupt(
    cmd: list[str], ready: Callable[[str], bool], *, env: dict[str, str], delay_s: float = 1.0
) -> Interrupted:
    """Start ``cmd`` in its own process group; once ``ready(stdout so far)`` holds (polled), wait ``delay_s`` and
    send SIGINT to the group, as a terminal's Ctrl-C does."""
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    out: list[str] = []
    err: list[tuple[float, str]] = []
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    readers = [
        threading.Thread(target=lambda: out.extend(stdout), daemon=True),
        threading.Thread(target=lambda: err.extend((time.monotonic(), line) for line in stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 240
        while not ready("".join(out)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"{cmd} ended or stalled before it was ready:\n{''.join(out)[-2000:]}\n{err[-20:]}"
                )
            time.sleep(0.1)
        time.sleep(delay_s)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for reader in readers:
        reader.join(timeout=10)
    return Interrupted(
        returncode,
        "".join(out),
        [line.rstrip("\n") for t, line in err if t < sent],
        [line.rstrip("\n") for t, line in err if t >= sent],
    )


def _no_process_mentions(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (a child that outlived its command)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


@pytest.mark.parametrize("form", [["-m", "scripts.synth"], ["scripts/synth.py"]], ids=["module", "path"])
def test_synth_while_the_cdk_runs(form: list[str], tmp_path: Path) -> None:
    outdir = tmp_path / "cdk.out"

    def synthesizing(
        _: str,
    ) -> bool:  # the staging folder of scripts/synth.py exists: jsii is building the app
        return any(tmp_path.glob(".cdk.out.synth-*/0"))

    env = _env()
    if form[0].endswith(".py"):
        env.pop("PYTHONPATH")
    run = interrupt([PY, *form, "--outdir", str(outdir)], synthesizing, env=env)
    assert run.returncode == 130, run
    assert run.stderr_after == ["error: interrupted (Ctrl-C)"], run
    assert list(tmp_path.iterdir()) == [], "the staging folder (or a half assembly) was left behind"


def test_demo_during_training(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    argv = [
        "--workdir",
        str(workdir),
        "--images",
        "24",
        "--held-out",
        "0",
        "--epochs",
        "30",
        "--imgsz",
        "160",
    ]
    run = interrupt(
        [PY, "-m", "scripts.demo", *argv, "--batch", "8", "--no-synth"],
        lambda out: "== 3/6 training" in out,
        env=_env(),
        delay_s=4.0,
    )
    assert run.returncode == 130, run
    assert run.stderr_before == [], run
    assert len(run.stderr_after) == 1, run
    assert run.stderr_after[0].startswith("error: interrupted (Ctrl-C) during step 3/6 training"), run
    assert _no_process_mentions(str(workdir / "opt_ml")) == []


def test_training_mid_epoch_is_one_line_and_keeps_the_checkpoint(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(
        tmp_path,
        dataset=tiny_dataset,
        pretrained=pretrained_checkpoint(),
        hyperparameters={**FAST_HYPERPARAMETERS, "epochs": "30", "workers": "2"},
    )
    run = interrupt(training_command(opt_ml), lambda out: "[checkpoint] epoch 1 saved" in out, env=_env())
    assert run.returncode == 130, run.stderr_after
    everything = run.stdout + "\n".join(run.stderr_before + run.stderr_after)
    assert "Traceback" not in everything and "KeyboardInterrupt" not in everything, everything[-3000:]
    assert [line for line in run.stderr_after if "[K" not in line] == [
        f"[interrupted] Ctrl-C; stopping. The last finished epoch is in {opt_ml / 'checkpoints'}"
    ]
    assert (opt_ml / "checkpoints" / "last.pt").is_file()


def test_serving_with_one_worker(trained_artifact: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def answers(_: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    cmd = [PY, "-m", "app.serving", "--model-dir", str(trained_artifact), "--host", "127.0.0.1"]
    run = interrupt([*cmd, "--port", str(port), "--workers", "1"], answers, env=_env(), delay_s=0.5)
    assert run.returncode == 130, run
    assert run.stderr_after == ["serve: interrupted (Ctrl-C); stopped"], run


COMMANDS = sorted(
    [p for p in (REPO_ROOT / "scripts").glob("*.py") if 'if __name__ == "__main__":' in p.read_text()]
    + [p.parent for p in (REPO_ROOT / "scripts").glob("*/__main__.py")]  # python scripts/release
)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.stem)
def test_every_command_answers_help_when_run_as_a_path(path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [PY, str(path), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["scripts/simulate_autoscaling.py", "--stage", "Dev", "--peak-rps", "5"], 0, "instance-hours"),
        (["scripts/verify_endpoint.py", "--stage", "prd"], 2, "error: python -m scripts.verify_endpoint: argument --stage: unknown stage 'prd'"),
    ],
    ids=["simulate_autoscaling", "verify_endpoint-typo"],
)  # fmt: skip
def test_a_command_run_as_a_path_runs(argv: list[str], code: int, expected: str, tmp_path: Path) -> None:
    """``python scripts/x.py`` from anywhere, without PYTHONPATH (it used to stop at ModuleNotFoundError)."""
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [PY, str(REPO_ROOT / argv[0]), *argv[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert expected in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
