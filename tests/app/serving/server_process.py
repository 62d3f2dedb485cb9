"""The ``serve`` executable (containers/serve/serve) as a process on 127.0.0.1: its command line and environment,
start (wait for the first 200 on /ping), stop (SIGTERM, as SageMaker does), and requests written raw on a socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra.paths import REPO_ROOT

SERVE = REPO_ROOT / "containers" / "serve" / "serve"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(**extra: str) -> dict[str, str]:
    """This environment without serving settings (each test sets its own), with this checkout importable."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SERVING_") and k != "SAGEMAKER_BIND_TO_PORT"
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


def serve_args(model_dir: Path, port: int, *args: str) -> list[str]:
    """``serve`` on 127.0.0.1:port with this artifact, as the container runs it (after the Python executable)."""
    return [
        str(SERVE),
        "serve",
        "--model-dir",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]


def run_python(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the repository root with ``serve_env(**env)``; output captured as text, 60 s at most."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=serve_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def send_raw(url: str, headers: dict[str, str], body: bytes, *, timeout: float = 30) -> socket.socket:
    """Write ``POST /invocations`` with these headers and body bytes as given (a declared Content-Length may differ
    from what is sent) and return the open socket: the caller reads the answer or hangs up."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": "x", **headers}.items())
    sock.sendall(f"POST /invocations HTTP/1.1\r\n{head}\r\n".encode() + body)
    return sock


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_s: float  # process start -> first 200 on /ping

    def logs(self) -> str:
        return self.log_path.read_text()


def start_server(
    model_dir: Path, log_path: Path, *, timeout: float = 60, args: tuple[str, ...] = (), **env: str
) -> LiveServer:
    """Start ``serve`` as a process on 127.0.0.1 and wait for its first 200 on /ping."""
    port = free_port()
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, *serve_args(model_dir, port, *args)],
        cwd=REPO_ROOT,
        env=serve_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return LiveServer(url, proc, log_path, time.monotonic() - started)
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(
        f"serve did not answer /ping with 200 within {timeout} s:\n{log_path.read_text()[-3000:]}"
    )


def stop_server(server: LiveServer, timeout: float = 25) -> int:
    """SIGTERM, wait up to ``timeout`` s (then kill); the exit code."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    return server.proc.returncode
