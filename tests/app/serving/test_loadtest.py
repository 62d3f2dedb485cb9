"""scripts/loadtest.py: bounded stepped load against the live server, and the autoscaling advice it prints.
Runtime: ~10 s (two bounded runs of <= 40 requests against the session's server)."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts import loadtest
from scripts.lib import load
from tests.app.serving.server_process import LiveServer, run_python


def _step(rps: float, concurrency: int = 2) -> load.Step:
    return load.Step(concurrency, 100, 0, 10.0, rps, 50.0, 90.0, {})


def test_target_is_rps_times_safety_times_60() -> None:
    advice = loadtest.advise(_step(12.5), safety_factor=0.5, peak_rps=None, min_capacity=1)
    assert advice.invocations_per_instance_target == 375.0 and advice.max_capacity is None


def test_max_capacity_covers_the_peak_at_the_target() -> None:
    # target 375/min = 6.25 rps per instance; a 40 rps peak needs 6.4 -> 7 instances
    advice = loadtest.advise(_step(12.5), safety_factor=0.5, peak_rps=40, min_capacity=2)
    assert (advice.min_capacity, advice.max_capacity) == (2, 7)


def test_knee_is_the_lowest_concurrency_near_the_top_throughput() -> None:
    steps = [_step(5.0, 1), _step(9.5, 2), _step(10.0, 4), _step(10.2, 8)]
    assert load.knee(steps) == steps[1]  # 9.5 >= 0.9 x 10.2: more clients after it add latency only
    assert load.knee([]) is None and load.knee([_step(0.0, 1)]) is None


def test_shed_rate_counts_the_503s_of_a_step() -> None:
    step = load.Step(8, 100, 30, 10.0, 7.0, 50.0, 900.0, {"503": 25, "504": 5})
    assert step.shed_rate == 0.25 and _step(5.0).shed_rate == 0.0


@pytest.mark.parametrize("text", ["", "4,2", "1,x", "0,1"])
def test_bad_concurrency_steps_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        loadtest.parse_concurrency(text)


def test_help_runs_without_aws_or_a_server() -> None:
    out = run_python("-m", "scripts.loadtest", "--help").stdout
    assert "--peak-rps" in out and "--endpoint" in out


def test_sustainable_concurrency_found_holds_zero_errors(
    live_server: LiveServer, photos: dict[str, bytes], tmp_path: Path
) -> None:
    image = tmp_path / "bus.jpg"
    image.write_bytes(photos["bus.jpg"])
    common = [
        "--url",
        live_server.url,
        "--image",
        str(image),
        "--requests",
        "40",
        "--seconds",
        "6",
        "--max-seconds",
        "30",
        "--p99-ms",
        "5000",
        "--peak-rps",
        "20",
    ]
    assert loadtest.main([*common, "--concurrency", "1,2,4", "--json", str(tmp_path / "find.json")]) == 0
    found = json.loads((tmp_path / "find.json").read_text())
    assert found["knee_concurrency"] in (1, 2, 4) and found["shed_rate"] == {"1": 0.0, "2": 0.0, "4": 0.0}
    concurrency = found["advice"]["concurrency"]
    assert found["advice"]["invocations_per_instance_target"] > 0 and found["advice"]["max_capacity"] >= 1
    # hold it: a second bounded run at that concurrency
    assert (
        loadtest.main([*common, "--concurrency", str(concurrency), "--json", str(tmp_path / "hold.json")])
        == 0
    )
    held = json.loads((tmp_path / "hold.json").read_text())["steps"][0]
    assert held["errors"] == 0 and held["requests"] > 0


class _Answers(BaseHTTPRequestHandler):
    """Reads the body, answers a small JSON document; every third answer closes the connection, every fifth is
    a 503 (what a shedding server does)."""

    protocol_version = "HTTP/1.1"
    count = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Answers.count += 1
        body = b'{"predictions": []}'
        self.send_response(503 if _Answers.count % 5 == 0 else 200)
        self.send_header("Content-Length", str(len(body)))
        if _Answers.count % 3 == 0:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_load_thread_spends_little_cpu_and_reconnects(
    answering_server: str, photos: dict[str, bytes]
) -> None:
    """The load generator shares the CPUs with a local server under test (bench/bench_serving.py): a load thread's
    client plus 20 posts of bus.jpg must cost the thread well under the ~65 ms an httpx client took (~30 ms to
    create, ~2 ms a request), and a connection the server closed is reopened for the next request."""
    _Answers.count = 0
    started = time.thread_time()
    invoke = loadtest.http_invoker(answering_server, photos["bus.jpg"], "image/jpeg", 10)()
    statuses = [invoke() for _ in range(20)]
    cpu_ms = (time.thread_time() - started) * 1000
    assert statuses == [503 if i % 5 == 0 else 200 for i in range(1, 21)]
    assert cpu_ms < 25, f"{cpu_ms:.1f} ms of CPU for one load thread's client and 20 requests"


def test_a_step_rate_counts_neither_warm_up_nor_drain() -> None:
    """A service that answers in 50 ms to each of 2 clients runs at 40 requests/s. Each client's first request
    (its connection's warm-up, unmeasured) takes 0.6 s: timing it without counting it gave ~16/s for a 1 s step,
    and a saturated bench step read ~10 % below the server's rate."""

    def make() -> load.Invoke:
        calls = 0

        def invoke() -> int:
            nonlocal calls
            calls += 1
            time.sleep(0.6 if calls == 1 else 0.05)
            return 200

        return invoke

    step = load.run_step(make, concurrency=2, max_requests=10_000, max_seconds=1.0)
    assert 36 <= step.rps <= 41, step
    assert step.errors == 0 and step.requests >= 38

    bounded = load.run_step(make, concurrency=2, max_requests=10, max_seconds=30)
    assert bounded.requests == 10 and 36 <= bounded.rps <= 41, bounded
