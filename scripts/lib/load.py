"""Closed-loop load steps (N clients, each sends its next request when the previous one is answered), bounded by
requests and seconds: the load test (scripts/loadtest.py), the release gate's load smoke and the serving bench run
them."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Invoke = Callable[[], int]  # sends one request, returns the HTTP status
KNEE_FRACTION = 0.9  # a step within 10% of the best throughput has reached the knee


@dataclass(frozen=True)
class Step:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float  # successful requests per second
    p50_ms: float
    p99_ms: float
    error_codes: dict[str, int]

    def sustainable(self, p99_bound_ms: float) -> bool:
        return self.requests > 0 and self.errors == 0 and self.p99_ms <= p99_bound_ms

    @property
    def shed_rate(self) -> float:
        """Fraction of requests the server shed (503: overloaded or not ready) instead of answering."""
        return self.error_codes.get("503", 0) / self.requests if self.requests else 0.0


def knee(steps: list[Step]) -> Step | None:
    """The lowest-concurrency step whose throughput is within KNEE_FRACTION of the best step's: where the
    instance is saturated. None without a step that answered anything."""
    best = max((s.rps for s in steps), default=0.0)
    if best <= 0:
        return None
    return min((s for s in steps if s.rps >= KNEE_FRACTION * best), key=lambda s: s.concurrency)


def http_invoker(url: str, body: bytes, content_type: str, timeout: float) -> Callable[[], Invoke]:
    """One keep-alive HTTP/1.1 connection per load thread, posting to ``<url>/invocations``.

    The standard library's client, not httpx: a local load test shares the CPUs with the server it measures, and
    every CPU-second the generator spends is one the server does not get. An ``httpx.Client`` costs ~30 ms of CPU
    to create (it builds a TLS context even for http://) and ~2 ms per request; ``http.client`` ~0.4 ms per
    request. After a failed request the connection is closed, so the next one reconnects."""
    from http.client import HTTPConnection, HTTPSConnection
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    path = parts.path.rstrip("/") + "/invocations"
    headers = {"Content-Type": content_type}

    def make() -> Invoke:
        conn = connection(parts.hostname or "", parts.port, timeout=timeout)

        def invoke() -> int:
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except Exception:
                conn.close()
                raise
            return response.status

        return invoke

    return make


def endpoint_invoker(
    session: Any,
    endpoint: str,
    body: bytes,
    content_type: str,
    timeout: float,
    pool: int,
    *,
    inference_id: str,
) -> Callable[[], Invoke]:
    """A SageMaker runtime client (thread-safe, one pool sized for the highest concurrency); every request carries
    ``inference_id`` (a synthetic one, app/contracts/invocation.py: readers of the data capture drop it)."""
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = session.client(
        "sagemaker-runtime",
        config=Config(max_pool_connections=pool, read_timeout=timeout, retries={"max_attempts": 0}),
    )

    def invoke() -> int:
        try:
            response = client.invoke_endpoint(
                EndpointName=endpoint, ContentType=content_type, Body=body, InferenceId=inference_id
            )
            return int(response["ResponseMetadata"]["HTTPStatusCode"])
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            return int(exc.response.get("OriginalStatusCode") or meta.get("HTTPStatusCode") or 599)

    return lambda: invoke


def run_step(
    make_invoke: Callable[[], Invoke], concurrency: int, max_requests: int, max_seconds: float
) -> Step:
    """Closed loop: ``concurrency`` threads until ``max_requests`` are answered or ``max_seconds`` pass.

    The clock starts once every thread has sent its unmeasured warm-up request (a barrier), and the rate counts
    the successes answered inside the window: from that start to ``max_seconds`` later, or to the last answer when
    the request bound ends the step first. Timing the warm-ups and the drain after the window without counting
    their requests understated a saturated server's rate by ~10 % (8 clients warming up ~1 s of an 8 s step).
    Latencies and counts cover every measured request, the drain's included."""
    answered: list[tuple[float, float]] = []  # (answered at, latency) of the successes
    errors: dict[str, int] = {}
    lock = threading.Lock()
    issued = 0
    window: dict[str, float] = {}

    def open_window() -> None:  # the barrier's action: runs once, when every thread has warmed up
        window["start"] = time.perf_counter()
        window["stop_at"] = window["start"] + max_seconds

    warmed_up = threading.Barrier(concurrency, action=open_window)

    def worker() -> None:
        nonlocal issued
        invoke = make_invoke()
        with contextlib.suppress(Exception):
            invoke()  # warm the connection; not measured
        try:
            warmed_up.wait(max_seconds + 120)
        except threading.BrokenBarrierError:  # a warm-up that outlived every timeout: no step to measure
            return
        while True:
            with lock:
                if issued >= max_requests or time.perf_counter() >= window["stop_at"]:
                    return
                issued += 1
            t0 = time.perf_counter()
            try:
                status = invoke()
                code = str(status) if status != 200 else ""
            except Exception as exc:  # a transport failure is an error of the step, not of the tool
                code = type(exc).__name__
            done = time.perf_counter()
            with lock:
                if code:
                    errors[code] = errors.get(code, 0) + 1
                else:
                    answered.append((done, done - t0))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * max_seconds + 240)  # each request has the invoker's timeout; this bounds them all
    if "start" not in window:
        raise RuntimeError(f"the {concurrency} load threads never all finished their warm-up request")
    start = window["start"]
    end = min(window["stop_at"], max((at for at, _ in answered), default=start))
    in_window = sum(1 for at, _ in answered if at <= end)
    ms = np.asarray([latency for _, latency in answered]) * 1000 if answered else np.asarray([math.inf])
    return Step(
        concurrency=concurrency,
        requests=len(answered) + sum(errors.values()),
        errors=sum(errors.values()),
        seconds=round(time.perf_counter() - start, 2),
        rps=round(in_window / (end - start), 2) if end > start else 0.0,
        p50_ms=round(float(np.percentile(ms, 50)), 1),
        p99_ms=round(float(np.percentile(ms, 99)), 1),
        error_codes=errors,
    )


def stopped_answering(step: Step) -> bool:
    """Every request failed in transport (connection refused/reset, timeout): no HTTP status came back at all."""
    return (
        step.requests > 0 and step.errors == step.requests and not any(c.isdigit() for c in step.error_codes)
    )
