"""Runs inference off the event loop: a bounded thread pool, admission control and a per-request deadline.

The event loop only reads bodies and writes responses, so ``/ping`` answers in milliseconds while every inference
thread is busy (ONNX Runtime, PIL and numpy release the GIL while they compute). At most ``max_queue`` requests are
admitted per worker (running + waiting); the next one gets 503 ``overloaded`` at once instead of queueing towards
SageMaker's 60 s timeout. A request past its deadline gets 504; work that has not started by then is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from app.serving.errors import DeadlineExceeded, NotReady, Overloaded
from app.serving.model import Detector
from app.serving.settings import ServingSettings

T = TypeVar("T")
log = logging.getLogger("app.serving.service")


class InferenceService:
    """Owns the detector and the pool; ``ready`` turns true once warm-up has run."""

    def __init__(self, detector: Detector, settings: ServingSettings) -> None:
        self.detector = detector
        self.settings = settings
        self.ready = False
        self.admitted = 0
        self._pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="infer")
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Warm up on the pool (the loop keeps answering /ping with 503 meanwhile), then report ready."""
        self._loop = asyncio.get_running_loop()
        if (
            self.detector.device_problem
        ):  # /ping stays 503: SageMaker fails the deployment instead of a CPU fleet
            log.error(
                "not ready: the GPU is not used",
                extra={
                    "fields": {"provider": "CUDAExecutionProvider", "reason": self.detector.device_problem}
                },
            )
            return
        started = time.perf_counter()
        await self._loop.run_in_executor(self._pool, self.detector.warmup, self.settings.warmup_runs)
        self.ready = True
        log.info(
            "ready",
            extra={
                "fields": {
                    "warmup_ms": round((time.perf_counter() - started) * 1000, 1),
                    "threads": self.settings.threads,
                    "ort_threads": self.settings.ort_threads,
                }
            },
        )

    def stop(self) -> None:
        """Refuse new work and drop what has not started; running inferences finish (they take < 1 s)."""
        self.ready = False
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _release(self, _: Future[Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closed between the check and the call (shutdown)
            loop.call_soon_threadsafe(self._decrement)

    def _decrement(self) -> None:
        self.admitted -= 1

    async def run(self, work: Callable[[float], T], deadline: float) -> T:
        """Run ``work(deadline)`` on the pool; 503 when not ready or full, 504 past ``deadline`` (monotonic)."""
        if not self.ready:
            raise NotReady("the model is not loaded and warmed up yet; retry shortly")
        if self.admitted >= self.settings.max_queue:
            raise Overloaded(
                f"{self.admitted} requests already admitted on this worker (SERVING_MAX_QUEUE="
                f"{self.settings.max_queue}); retry with backoff or add instances"
            )
        self.admitted += 1
        try:
            future = self._pool.submit(_guarded, work, deadline)
        except RuntimeError:  # pool shut down: we are stopping
            self.admitted -= 1
            raise NotReady("the server is shutting down") from None
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=deadline - time.monotonic())
        except TimeoutError:
            raise DeadlineExceeded(
                f"no answer within the deadline of {self.settings.deadline_s} s (SERVING_DEADLINE_S)"
            ) from None


def _guarded(work: Callable[[float], T], deadline: float) -> T:
    if time.monotonic() > deadline:
        raise DeadlineExceeded("the request waited past its deadline before inference started")
    return work(deadline)
