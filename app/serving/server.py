"""Starts the HTTP server: checks the artifact first, then uvicorn (httptools + uvloop) on the chosen port.

Why this stack: an asyncio server keeps ``/ping`` and request I/O on the event loop while inference runs on a
bounded thread pool (service.py). The process layout comes from settings.default_layout: on CPU single-threaded
ONNX Runtime runs, one per vCPU - the machine's measured limit (issue 15) - side by side in one process per 4 vCPUs
(uvicorn's multi-process supervisor runs several); on a GPU one process. ``SERVING_WORKERS`` /
``SERVING_INTRA_OP_THREADS`` override it.

SIGTERM (SageMaker stopping the container): uvicorn stops accepting, in-flight requests finish within
``SERVING_GRACEFUL_TIMEOUT_S`` (default 20 s, below the 25 s budget), then the pool shuts down and the process exits.
With several workers the supervisor forwards SIGTERM to every worker, each drains the same way, and the supervisor
exits once all have (tests/app/serving/test_lifecycle.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import uvicorn

from app.contracts.artifact import ArtifactError
from app.serving import logs
from app.serving.app import create_app
from app.serving.model import Detector
from app.serving.settings import ServingSettings

log = logging.getLogger("app.serving.server")
EXIT_BAD_ARTIFACT = 2
WORKER_HEALTHCHECK_S = 60


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is in the serving requirements
        return "asyncio"
    return "uvloop"


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: ServingSettings) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code (2 for an artifact that cannot be served)."""
    logs.configure(settings.log_level)
    # uvicorn drains on SIGTERM, then re-raises it with the previous handler: make that a clean exit (code 0)
    # instead of death by signal. Before uvicorn takes over (model loading), SIGTERM exits at once.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        detector = Detector.load(
            settings.model_dir,
            device=settings.device,
            threads=settings.ort_threads,
            precision=settings.precision,
            spinning=settings.spinning,
        )
    except ArtifactError as exc:
        log.error("cannot serve this model artifact", extra={"fields": {"reason": str(exc)}})
        print(f"serve: cannot serve the model artifact: {exc}", file=sys.stderr)
        return EXIT_BAD_ARTIFACT
    common: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "loop": _loop(),
        "http": "httptools",
        "lifespan": "on",
        "log_config": None,
        "access_log": False,
        "timeout_keep_alive": 75,  # longer than the idle timeout of the caller's connection pool
        "timeout_graceful_shutdown": settings.graceful_timeout_s,
    }
    log.info(
        "starting",
        extra={
            "fields": {
                "host": settings.host,
                "port": settings.port,
                "workers": settings.workers,
                "threads": settings.threads,
                "ort_threads": settings.ort_threads,
                "spinning": settings.spinning,
                "run_slots": settings.run_slots,
                "model_dir": str(settings.model_dir),
            }
        },
    )
    if settings.workers == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(detector, settings), **common))  # type: ignore[arg-type]
        server.run()
        return 0 if server.started else 1
    # Each worker process rebuilds its settings and session from the environment (the check above already vetted
    # the artifact): hand it every resolved value, command-line overrides included, so workers agree with us.
    del detector
    for name, value in settings.model_dump().items():
        os.environ[f"SERVING_{name.upper()}"] = str(value)
    uvicorn.run(
        "app.serving.app:app_from_env",
        factory=True,
        workers=settings.workers,
        # uvicorn's supervisor pings each worker every 0.5 s and kills one that does not answer within this many
        # seconds - also while it starts (imports, model load). Its 5 s default killed every worker of a 2-core
        # box under load in a loop (serve never answered /ping); a hung worker is still replaced, later.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        **common,  # type: ignore[arg-type]
    )
    return 0
