"""Process lifecycle of ``serve``: SIGTERM drains in-flight work and exits in time; unusable artifacts fail startup
with a clear message; the serving path never imports torch or ultralytics. Runtime: ~30 s (three server starts, two
of them multi-process)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.app.serving.server_process import (
    SERVE,
    run_python,
    send_raw,
    serve_args,
    start_server,
    stop_server,
)


def _run_serve(model_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(*serve_args(model_dir, 1), check=False, **env)


def _copy(trained_artifact: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("model.onnx", "model.json"):
        shutil.copyfile(trained_artifact / name, target / name)
    return target


def _send(url: str, body: bytes) -> socket.socket:
    headers = {"Content-Type": "application/json", "Connection": "close", "Content-Length": str(len(body))}
    return send_raw(url, headers, body)


def _status_and_finish(sock: socket.socket) -> tuple[int, float]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return int(data.split(b" ", 2)[1]), time.monotonic()


def test_sigterm_finishes_in_flight_requests_and_exits_within_25_s(
    trained_artifact: Path, tmp_path: Path, photos: dict[str, bytes]
) -> None:
    server = start_server(trained_artifact, tmp_path / "serve.log", SERVING_THREADS="1")
    body = json.dumps({"images": [base64.b64encode(photos["bus.jpg"]).decode()] * 8}).encode()
    sockets = [
        _send(server.url, body) for _ in range(4)
    ]  # 4 x 8 images on one inference thread: > 1 s of work
    time.sleep(0.3)  # the server has read them; most are still queued or running
    sigterm_at = time.monotonic()
    code = stop_server(server, timeout=30)
    exited_after = time.monotonic() - sigterm_at
    answers = [_status_and_finish(sock) for sock in sockets]
    assert code == 0, server.logs()[-2000:]
    assert exited_after < 25
    assert [status for status, _ in answers] == [200] * 4
    assert max(finished for _, finished in answers) > sigterm_at, "no request was still in flight at SIGTERM"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/ping", timeout=2)


def test_missing_model_onnx_fails_startup_with_a_clear_message(
    trained_artifact: Path, tmp_path: Path
) -> None:
    model_dir = _copy(trained_artifact, tmp_path / "model")
    (model_dir / "model.onnx").unlink()
    proc = _run_serve(model_dir)
    assert proc.returncode == 2
    assert f"{model_dir / 'model.onnx'}: missing" in proc.stderr


def test_class_count_mismatch_fails_startup_with_a_clear_message(
    trained_artifact: Path, tmp_path: Path
) -> None:
    model_dir = _copy(trained_artifact, tmp_path / "model")
    card = json.loads((model_dir / "model.json").read_text())
    card["class_names"] = card["class_names"][:-1]
    card["export"]["output_shape"][1] -= 1
    (model_dir / "model.json").write_text(json.dumps(card))
    proc = _run_serve(model_dir)
    assert proc.returncode == 2
    assert "cannot serve the model artifact" in proc.stderr and "classes" in proc.stderr


def test_int8_precision_on_an_artifact_without_int8_fails_startup_never_serves_fp32(
    trained_artifact: Path, tmp_path: Path
) -> None:
    model_dir = _copy(trained_artifact, tmp_path / "model")
    card = json.loads((model_dir / "model.json").read_text())
    card["int8"] = None
    (model_dir / "model.json").write_text(json.dumps(card))
    proc = _run_serve(model_dir, SERVING_PRECISION="int8")
    assert proc.returncode == 2
    assert "SERVING_PRECISION=int8 but this artifact ships only ['fp32']" in proc.stderr


def test_serving_path_imports_neither_torch_nor_ultralytics() -> None:
    code = (
        "import sys, app.serving.__main__, app.serving.server; "
        "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))"
    )
    out = run_python("-c", code).stdout
    assert out.strip() == "[]"


def test_serve_help_names_the_settings() -> None:
    out = run_python(str(SERVE), "--help").stdout
    assert "--model-dir" in out and "SERVING_" in out


def test_multi_worker_mode_serves_and_drains(
    trained_artifact: Path, tmp_path: Path, photos: dict[str, bytes]
) -> None:
    """--workers 2: uvicorn's supervisor with one session per worker process, each with the command line's
    settings; SIGTERM stops them all."""
    server = start_server(
        trained_artifact, tmp_path / "serve.log", args=("--workers", "2"), SERVING_THREADS="3"
    )
    deadline = time.monotonic() + 30
    while server.logs().count('"message": "ready"') < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    answers = [
        httpx.post(
            f"{server.url}/invocations",
            content=photos["bus.jpg"],
            headers={"Content-Type": "image/jpeg"},
            timeout=30,
        ).status_code
        for _ in range(4)
    ]
    parameters = httpx.get(f"{server.url}/execution-parameters", timeout=10).json()
    code = stop_server(server, timeout=30)
    assert server.logs().count('"message": "ready"') == 2
    assert answers == [200] * 4
    assert parameters["MaxConcurrentTransforms"] == 2 * 3  # workers x threads, as the worker sees them
    assert code == 0, server.logs()[-2000:]


def test_sigterm_drains_every_worker_of_the_multi_process_layout(
    trained_artifact: Path, tmp_path: Path, photos: dict[str, bytes]
) -> None:
    """The default CPU layout runs one process per 4 vCPUs: SageMaker's SIGTERM reaches uvicorn's supervisor, which
    forwards it to every worker; each finishes its in-flight requests, and the supervisor exits 0 within 25 s."""
    server = start_server(
        trained_artifact, tmp_path / "serve.log", args=("--workers", "2"), SERVING_THREADS="1"
    )
    deadline = time.monotonic() + 30
    while server.logs().count('"message": "ready"') < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    body = json.dumps({"images": [base64.b64encode(photos["bus.jpg"]).decode()] * 8}).encode()
    sockets = [_send(server.url, body) for _ in range(6)]  # spread over both workers by the kernel
    time.sleep(0.3)
    sigterm_at = time.monotonic()
    code = stop_server(server, timeout=30)
    exited_after = time.monotonic() - sigterm_at
    answers = [_status_and_finish(sock) for sock in sockets]
    logs = server.logs()
    assert code == 0, logs[-2000:]
    assert exited_after < 25
    assert [status for status, _ in answers] == [200] * 6, logs[-2000:]
    assert max(finished for _, finished in answers) > sigterm_at, "no request was still in flight at SIGTERM"
    assert logs.count('"message": "stopped"') == 2, "a worker did not run its shutdown (drain) path"
