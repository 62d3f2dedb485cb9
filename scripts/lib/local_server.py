"""The serving entrypoint as a local process on 127.0.0.1 (``python -m app.serving``, as the container starts it), and
one ``/invocations`` call: the demo and the journey serve a trained model this way."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from app.contracts.invocation import InvocationResponse
from infra.paths import REPO_ROOT
from scripts.lib.cli import OperatorError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(model_dir: Path, *, say: Callable[[str], None] = print) -> Iterator[str]:
    """Start the serving entrypoint on 127.0.0.1 with ``model_dir`` as its model; yield its URL once /ping answers;
    always stop it (SIGTERM, then SIGKILL after 25 s). Its log is ``serving.log`` next to ``model_dir``."""
    port = free_port()
    env = {**os.environ, "SERVING_HOST": "127.0.0.1"}
    cmd = [sys.executable, "-m", "app.serving", "--model-dir", str(model_dir), "--port", str(port)]
    say(f"  $ {' '.join(cmd)}")
    log = (model_dir.parent / "serving.log").open("w")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise OperatorError(
                    f"server exited with {proc.returncode} before it was ready; see {log.name}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ping", timeout=2) as resp:
                if resp.status == 200:
                    break
            if time.monotonic() > deadline:
                raise OperatorError(f"/ping did not answer 200 within 60 s; see {log.name}")
            time.sleep(0.2)
        say(f"  server ready at {url} (log: {log.name})")
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def invoke(url: str, body: bytes, content_type: str) -> InvocationResponse:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return InvocationResponse.model_validate_json(resp.read())
    except urllib.error.HTTPError as exc:
        raise OperatorError(
            f"/invocations answered {exc.code}: {exc.read().decode(errors='replace')}"
        ) from None
