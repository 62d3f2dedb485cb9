"""``python -m app.serving --model-dir DIR --port N``: the serve container's entrypoint (the ``serve`` executable).

SageMaker starts the container as ``docker run IMAGE serve``, so a leading ``serve`` argument is accepted. Defaults:
``/opt/ml/model`` and port 8080 (or ``SAGEMAKER_BIND_TO_PORT``); every other knob is a ``SERVING_*`` variable
(see app.serving.settings).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from app.serving.settings import ServingSettings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serve",
        description="Serve a YOLO model artifact (model.onnx + model.json) on /ping and /invocations.",
        epilog="Other settings come from SERVING_* environment variables: WORKERS, THREADS, MAX_QUEUE, "
        "MAX_BODY_BYTES, DEADLINE_S, CONF, IOU, MAX_DET, DEVICE, LOG_LEVEL (see app/serving/settings.py).",
    )
    parser.add_argument("command", nargs="?", choices=["serve"], help="SageMaker passes 'serve'; optional")
    parser.add_argument("--model-dir", type=Path, help="artifact folder (default /opt/ml/model)")
    parser.add_argument("--port", type=int, help="default 8080, or SAGEMAKER_BIND_TO_PORT when set")
    parser.add_argument("--host", help="default 0.0.0.0 (use 127.0.0.1 locally)")
    parser.add_argument("--workers", type=int, help="server processes (default 1, or SERVING_WORKERS)")
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
    from app.serving.server import serve  # after argument checks: --help stays fast

    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
