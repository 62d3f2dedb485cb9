"""The data plane and its scheduling: one request's body -> the response document (``invoke``), run off the event
loop on a bounded thread pool with admission by expected wait and a per-request deadline (``run``).

The event loop only reads bodies and writes responses, so ``/ping`` answers in milliseconds while every inference
thread is busy (ONNX Runtime, PIL and numpy release the GIL while they compute).

Admission: a request is admitted while the time it is expected to take - (requests ahead / runs at once + 1) x the
measured service time (an EWMA of recent requests, seeded by warm-up) - stays under ``admit_fraction`` of the
deadline. Beyond that it gets 503 ``overloaded`` with ``Retry-After`` at once, instead of queueing towards a 504
or SageMaker's 60 s timeout. A fixed count was wrong both ways: 16 shed a burst of 60 that ~0.1 s requests answer
in ~6 s (and a 503 burst during a canary bake trips the rollback alarm), and is low on a GPU. ``max_queue`` stays
as a hard cap against memory blowup. A request past its deadline gets 504; work not started by then is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from app.contracts.invocation import InferenceOptions
from app.serving import images, payload
from app.serving.errors import DeadlineExceeded, NotReady, Overloaded
from app.serving.model import Detector
from app.serving.settings import ServingSettings

T = TypeVar("T")
log = logging.getLogger("app.serving.service")
EWMA_WEIGHT = 0.2  # weight of the newest service time: follows a change of load within ~5 requests


def expected_wait(*, ahead: int, parallel: int, service_s: float) -> float:
    """Seconds a new request is expected to wait before it starts: the ``ahead`` requests already admitted
    drain ``parallel`` at a time, each taking ``service_s``."""
    return ahead / max(1, parallel) * service_s


class InferenceService:
    """Owns the detector and the pool; ``ready`` turns true once warm-up has run."""

    def __init__(self, detector: Detector, settings: ServingSettings) -> None:
        self.detector = detector
        self.settings = settings
        self.model_ref = {"name": detector.card.name, "version": detector.card.version}
        self._stride = detector.stride
        self._runs = threading.BoundedSemaphore(settings.run_slots)  # ONNX Runtime runs at once
        self.ready = False
        self.admitted = 0
        self.service_s = 0.0  # EWMA of the time one request spends on the pool (0 until measured: admit)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="infer")
        self._loop: asyncio.AbstractEventLoop | None = None

    def invoke(
        self, body: bytes, kind: str, header_options: Mapping[str, str], deadline: float
    ) -> dict[str, Any]:
        """One request, on the calling thread (a pool thread under ``run``): parse the body of media type ``kind``,
        merge the options (defaults < header < body), then decode, letterbox, infer and postprocess each image, in
        order. Raises the ServingError that names what was wrong; DeadlineExceeded once ``deadline`` (monotonic)
        has passed before an image starts."""
        s = self.settings
        parsed = payload.parse(kind, body, s.max_images)
        opts: InferenceOptions = payload.options(s.default_options, header_options, parsed.body_options)
        predictions: list[dict[str, Any]] = []
        for data, name in zip(parsed.images, parsed.names, strict=True):
            if time.monotonic() > deadline:
                # Never a partial batch: every image is answered or the request is a 504 (the caller may already
                # have it; either way, stop spending CPU on it).
                raise DeadlineExceeded(
                    f"the deadline of {s.deadline_s:g} s passed after {len(predictions)} of "
                    f"{len(parsed.images)} images"
                )
            item = images.load(
                data, imgsz=self.detector.imgsz, max_pixels=s.max_image_pixels, what=name, stride=self._stride
            )
            predictions.append(self.detector.predict(item, opts, gate=self._runs))
        return {"model": self.model_ref, "predictions": predictions}

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
        if self.settings.warmup_runs:  # a first estimate of the service time (a run, without decode)
            self.service_s = (time.perf_counter() - started) / self.settings.warmup_runs
        self.ready = True
        log.info(
            "ready",
            extra={
                "fields": {
                    "warmup_ms": round((time.perf_counter() - started) * 1000, 1),
                    "threads": self.settings.threads,
                    "ort_threads": self.settings.ort_threads,
                    "service_ms": round(self.service_s * 1000, 1),
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

    def observe(self, seconds: float) -> None:
        """Fold one request's time on the pool into the service-time EWMA (called from pool threads)."""
        with self._lock:
            self.service_s = (
                seconds if self.service_s == 0 else self.service_s + EWMA_WEIGHT * (seconds - self.service_s)
            )

    def admission(self) -> None:
        """Raise Overloaded (with Retry-After) when a new request's expected wait leaves too little of the
        deadline, or the hard cap is reached. An idle worker always admits (a slow request then gets 504)."""
        s = self.settings
        budget = s.deadline_s * s.admit_fraction
        # service_s is a request's time on the pool (gate wait included), so the pool's threads are what drain
        # the queue in parallel: threads / service_s is the throughput whatever run_slots is.
        wait = expected_wait(ahead=self.admitted, parallel=s.threads, service_s=self.service_s)
        if self.admitted >= s.max_queue:
            why = f"{self.admitted} requests already admitted on this worker (hard cap SERVING_MAX_QUEUE={s.max_queue})"
        elif wait > budget:
            why = (
                f"{self.admitted} requests ahead at ~{self.service_s * 1000:.0f} ms each, {s.threads} at once: "
                f"expected wait {wait:.2f} s > {budget:.2f} s ({s.admit_fraction:g} x SERVING_DEADLINE_S="
                f"{s.deadline_s:g})"
            )
        else:
            return
        # Come back when the requests ahead have drained (at least 1 s: Retry-After is whole seconds).
        raise Overloaded(f"{why}; retry with backoff or add instances", retry_after_s=max(1, math.ceil(wait)))

    async def run(self, work: Callable[[float], T], deadline: float) -> T:
        """Run ``work(deadline)`` on the pool; 503 when not ready or full, 504 past ``deadline`` (monotonic)."""
        if not self.ready:
            raise NotReady("the model is not loaded and warmed up yet; retry shortly")
        self.admission()
        self.admitted += 1
        try:
            future = self._pool.submit(self._timed, work, deadline)
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

    def _timed(self, work: Callable[[float], T], deadline: float) -> T:
        """On the pool: skip work already past its deadline; measure the service time of the rest."""
        started = time.monotonic()
        if started > deadline:
            raise DeadlineExceeded("the request waited past its deadline before inference started")
        result = work(deadline)
        self.observe(time.monotonic() - started)
        return result
