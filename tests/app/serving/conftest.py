"""Serving fixtures, built once per session: sample images, the trained artifact as a Detector, and a live server.

The live server is the container's ``serve`` executable (containers/serve/serve) started as a process on
127.0.0.1 with the artifact of the session's real training run (``trained_artifact``).
"""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from app.serving.model import Detector

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVE = REPO_ROOT / "containers" / "serve" / "serve"


def ultralytics_asset(name: str) -> bytes:
    """A real photo shipped inside the ultralytics package (read as a file; serving never imports ultralytics)."""
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin is not None
    return (Path(spec.origin).parent / "assets" / name).read_bytes()


def generated_image(width: int = 480, height: int = 320, fmt: str = "PNG") -> bytes:
    """A synthetic scene: coloured shapes on a gradient-free background."""
    img = Image.new("RGB", (width, height), (40, 120, 60))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 50, 180, 260), fill=(200, 30, 30))
    draw.ellipse((250, 80, 420, 250), fill=(240, 220, 40))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SERVING_") and k != "SAGEMAKER_BIND_TO_PORT"
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


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
        [
            sys.executable,
            str(SERVE),
            "serve",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
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
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    return server.proc.returncode


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """Real photos (JPEG) from the ultralytics package plus a generated scene (PNG)."""
    return {
        "bus.jpg": ultralytics_asset("bus.jpg"),
        "zidane.jpg": ultralytics_asset("zidane.jpg"),
        "generated.png": generated_image(),
    }


@pytest.fixture(scope="session")
def detector(trained_artifact: Path) -> Detector:
    return Detector.load(trained_artifact, device="cpu", threads=2)


@pytest.fixture(scope="session")
def live_server(trained_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(trained_artifact, tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    stop_server(server)
