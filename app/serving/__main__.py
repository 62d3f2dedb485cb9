"""``python -m app.serving --model-dir DIR --port N``: the serve container's entrypoint (the ``serve`` executable).

SageMaker starts the container as ``docker run IMAGE serve``, so a leading ``serve`` argument is accepted. Defaults:
``/opt/ml/model`` and port 8080 (or ``SAGEMAKER_BIND_TO_PORT``); every other knob is a ``SERVING_*`` variable
(see app.serving.settings).
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

from pydantic import ValidationError

from app.serving.settings import ServingSettings

EXIT_INTERRUPTED = 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serve",
        description="Serve a YOLO model artifact (model.onnx + model.json) on /ping and /invocations.",
        epilog="Other settings come from SERVING_* environment variables: WORKERS, THREADS, INTRA_OP_THREADS, "
        "SPINNING, PARALLEL_RUNS, DEADLINE_S, ADMIT_FRACTION, MAX_QUEUE, MAX_BODY_BYTES, PRECISION, CONF, IOU, "
        "MAX_DET, DEVICE, LOG_LEVEL (see app/serving/settings.py).",
    )
    parser.add_argument("command", nargs="?", choices=["serve"], help="SageMaker passes 'serve'; optional")
    parser.add_argument("--model-dir", type=Path, help="artifact folder (default /opt/ml/model)")
    parser.add_argument("--port", type=int, help="default 8080, or SAGEMAKER_BIND_TO_PORT when set")
    parser.add_argument("--host", help="default 0.0.0.0 (use 127.0.0.1 locally)")
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes (default: one per 4 vCPUs on CPU, 1 on GPU; or SERVING_WORKERS)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "model_dir": args.model_dir,
            "port": args.port,
            "host": args.host,
            "workers": args.workers,
        }.items()
        if v is not None
    }
    try:
        settings = ServingSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e['input']!r})" for e in exc.errors()
        )
        print(f"serve: invalid settings: {problems}", file=sys.stderr)
        return 2
    problem = port_problem(settings.host, settings.port)
    if problem:  # one plain line, before the model is loaded (uvicorn would log it as JSON, after loading)
        print(f"serve: {problem}", file=sys.stderr)
        return 2
    from app.serving.server import serve  # after argument checks: --help stays fast

    try:
        return serve(settings)
    except KeyboardInterrupt:  # uvicorn drains, then re-raises Ctrl-C: one line instead of its frames
        print("serve: interrupted (Ctrl-C); stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port`` (in use, not allowed), or None. Binds the way uvicorn does
    (SO_REUSEADDR), so a port that only has connections in TIME_WAIT is not reported."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use (another server?): stop it or pass --port"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
