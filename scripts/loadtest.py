"""Find the highest request rate one serving instance sustains, and the autoscaling settings that follow from it.

Closed-loop load (N clients, each sends its next request when the previous one is answered) against a local serving
container (``--url http://127.0.0.1:8080``) or a real endpoint (``--endpoint NAME``, boto3 ``invoke_endpoint``;
point it at an endpoint with one instance). Concurrency is stepped up (``--concurrency 1,2,4,8``); each step is
bounded by ``--requests`` and ``--seconds`` and the whole run by ``--max-seconds``, so it always stops by itself. The
sustainable rate is the best step with 0 errors and p99 within ``--p99-ms``. Prints the
``SageMakerVariantInvocationsPerInstance`` target (max RPS x safety factor x 60, the same formula as
``infra.config.AutoscalingSettings.invocations_target``) and min/max capacity for ``--peak-rps``, labelled with the
precision the target serves (``--precision``, or read from the endpoint's model): a stage's measured capacity is
only valid for the graph it was measured on, so the stage records it as ``autoscaling.measured_precision``. Each step
also reports its shed rate (503s the server answered because the expected wait exceeded its deadline,
app/serving/service.py) and the run reports the knee: the lowest concurrency that already reaches the top throughput
(within KNEE_FRACTION); more clients beyond it only add latency, then shedding.

    python -m scripts.loadtest --url http://127.0.0.1:8080 --image photo.jpg --p99-ms 800 --peak-rps 40
    python -m scripts.loadtest --endpoint my-endpoint --region eu-west-1 --peak-rps 40 --json result.json

Every argument is checked before the first request (a --json destination in a missing folder fails at once, not
after the run), and one request is sent first: a target where nothing listens, or that answers it with an error,
stops the command with that cause instead of a table of failed steps.

Exit status (scripts/lib/cli.py): 0 advice printed, 1 error (target unreachable, AWS), 2 usage, 3 no step was
sustainable (0 errors and p99 within --p99-ms).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from app.contracts.invocation import synthetic_inference_id
from infra.config import AutoscalingSettings
from scripts.lib import aws, cli
from scripts.lib.cli import OperatorError
from scripts.lib.load import Invoke, Step, endpoint_invoker, http_invoker, knee, run_step, stopped_answering

SYNTHETIC_ID = synthetic_inference_id("loadtest")  # kept out of release compare's replay of the capture


@dataclass(frozen=True)
class Advice:
    max_rps_per_instance: float
    concurrency: int
    safety_factor: float
    invocations_per_instance_target: float  # per minute
    peak_rps: float | None
    min_capacity: int
    max_capacity: int | None
    # The SERVING_PRECISION measured: the stage records it as autoscaling.measured_precision.
    precision: str = "fp32"


def advise(
    best: Step, *, safety_factor: float, peak_rps: float | None, min_capacity: int, precision: str = "fp32"
) -> Advice:
    """The autoscaling settings that follow from the best sustainable step (formula owned by infra.config), for the
    precision the target served: a capacity measured at int8 is no capacity for fp32 (infra.config refuses it)."""
    target = AutoscalingSettings(
        measured_max_rps_per_instance=best.rps, safety_factor=safety_factor, min_capacity=1, max_capacity=1
    ).invocations_target
    max_capacity = None
    if peak_rps is not None:
        # target tracking holds each instance near target/60 rps; the peak needs peak / that many instances
        max_capacity = max(min_capacity, math.ceil(peak_rps * 60 / target - 1e-9))
    return Advice(
        best.rps, best.concurrency, safety_factor, target, peak_rps, min_capacity, max_capacity, precision
    )


def endpoint_precision(session: Any, endpoint: str) -> str:
    """The SERVING_PRECISION an endpoint's model runs (infra sets it from endpoint.precision; unset means fp32)."""
    sagemaker = session.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    found = set()
    for variant in variants:
        model = sagemaker.describe_model(ModelName=variant["ModelName"])
        env = model.get("PrimaryContainer", {}).get("Environment", {})
        found.add(env.get("SERVING_PRECISION", "fp32"))
    if len(found) != 1:
        raise OperatorError(
            f"endpoint {endpoint}: its variants serve {sorted(found)}; load-test an endpoint of one precision"
        )
    return found.pop()


def parse_concurrency(text: str) -> list[int]:
    """argparse type of --concurrency: increasing integers between 1 and 256."""
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}': expected comma-separated integers, e.g. 1,2,4,8"
        ) from None
    if not steps or any(c < 1 or c > 256 for c in steps) or steps != sorted(set(steps)):
        raise argparse.ArgumentTypeError(f"'{text}': expected increasing integers between 1 and 256")
    return steps


def probe_url(url: str, body: bytes, content_type: str, timeout: float) -> None:
    """One request before the run: name the real cause when the target cannot take the load test at all."""
    import httpx

    try:
        response = httpx.post(
            f"{url.rstrip('/')}/invocations",
            content=body,
            headers={"Content-Type": content_type},
            timeout=timeout,
        )
    except httpx.ConnectError as exc:
        raise OperatorError(
            f"nothing listens at {url} ({exc}): start the server first, e.g. "
            "python -m app.serving --model-dir DIR --port 8080 --host 127.0.0.1"
        ) from None
    except httpx.TimeoutException:
        raise OperatorError(f"{url} did not answer a first request within --timeout {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise OperatorError(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        raise OperatorError(
            f"{url}/invocations answered {response.status_code} to a first request: {response.text[:200]!r}"
        )


def endpoint_load(
    session: Any, endpoint: str, body: bytes, content_type: str, timeout: float, pool: int
) -> Callable[[], Invoke]:
    """The load test's requests to an endpoint, each marked synthetic (release compare drops them)."""
    return endpoint_invoker(session, endpoint, body, content_type, timeout, pool, inference_id=SYNTHETIC_ID)


def probe_endpoint(session: Any, endpoint: str, body: bytes, content_type: str) -> None:
    """One invoke_endpoint before the run; AWS errors (not found, no credentials) reach cli.command."""
    session.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType=content_type, Body=body, InferenceId=SYNTHETIC_ID
    )


def default_image() -> bytes:
    """A generated 1280x720 JPEG (real photos are better: pass --image)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1280, 720), (70, 110, 90))
    draw = ImageDraw.Draw(img)
    for i in range(12):
        draw.rectangle(
            (60 + 100 * i, 200 + 20 * (i % 3), 130 + 100 * i, 420 + 15 * (i % 4)), fill=(20 * i, 90, 160)
        )
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m scripts.loadtest",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--url", type=cli.http_url, help="local serving container, e.g. http://127.0.0.1:8080"
    )
    target.add_argument("--endpoint", help="SageMaker endpoint name (use one with a single instance)")
    parser.add_argument("--region", help="AWS region of --endpoint (default: your AWS config)")
    parser.add_argument("--profile", help="AWS profile for --endpoint (default: the environment's)")
    parser.add_argument(
        "--image", type=cli.existing_file, help="image to send (default: a generated 1280x720 JPEG)"
    )
    parser.add_argument("--content-type", default="image/jpeg")
    parser.add_argument(
        "--concurrency", type=parse_concurrency, default="1,2,4,8", help="concurrency steps, increasing"
    )
    parser.add_argument(
        "--requests", type=cli.positive_int, default=200, help="per step: stop after this many requests"
    )
    parser.add_argument(
        "--seconds", type=cli.positive_float, default=30.0, help="per step: stop after this long"
    )
    parser.add_argument(
        "--max-seconds", type=cli.positive_float, default=300.0, help="whole run: no new step after this"
    )
    parser.add_argument(
        "--p99-ms", type=cli.positive_float, default=1000.0, help="latency bound a sustainable step keeps"
    )
    parser.add_argument("--timeout", type=cli.positive_float, default=60.0, help="per request, seconds")
    parser.add_argument(
        "--safety-factor", type=cli.fraction, default=0.5, help="fraction of max RPS to target (0..1]"
    )
    parser.add_argument(
        "--peak-rps", type=cli.positive_float, help="expected peak load (requests/s) for the capacity bounds"
    )
    parser.add_argument(
        "--min-capacity", type=cli.positive_int, default=1, help="instances kept at all times (2 for HA)"
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        help="the SERVING_PRECISION the target serves, recorded with the advice (default: read from --endpoint's "
        "model; fp32 for --url)",
    )
    parser.add_argument(
        "--json", type=cli.output_file, help="also write steps + advice to this file (its folder must exist)"
    )
    return parser


def _print_steps(steps: list[Step], bound: float) -> None:
    print(
        f"{'conc':>5} {'requests':>9} {'errors':>7} {'shed':>6} {'rps':>8} {'p50 ms':>9} {'p99 ms':>9}  within bound"
    )
    for s in steps:
        ok = (
            "yes" if s.sustainable(bound) else f"no ({'errors ' + str(s.error_codes) if s.errors else 'p99'})"
        )
        print(
            f"{s.concurrency:>5} {s.requests:>9} {s.errors:>7} {s.shed_rate:>6.0%} {s.rps:>8.2f} {s.p50_ms:>9.1f} "
            f"{s.p99_ms:>9.1f}  {ok}"
        )


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    steps_wanted: list[int] = args.concurrency
    body = args.image.read_bytes() if args.image else default_image()
    precision = args.precision or "fp32"
    if args.url:
        probe_url(args.url, body, args.content_type, args.timeout)
        make = http_invoker(args.url, body, args.content_type, args.timeout)
        where = args.url
    else:
        session = aws.aws_session(profile=args.profile, region=args.region)
        precision = args.precision or endpoint_precision(session, args.endpoint)
        probe_endpoint(session, args.endpoint, body, args.content_type)
        make = endpoint_load(session, args.endpoint, body, args.content_type, args.timeout, max(steps_wanted))
        where = f"endpoint {args.endpoint}"
    print(
        f"load test of {where} ({precision}): {len(body)} byte {args.content_type} body, steps {steps_wanted}, "
        f"<= {args.requests} requests / {args.seconds:g} s per step, p99 bound {args.p99_ms:g} ms"
    )
    started = time.monotonic()
    steps: list[Step] = []
    for concurrency in steps_wanted:
        if time.monotonic() - started > args.max_seconds:
            print(f"stopping: --max-seconds {args.max_seconds:g} reached")
            break
        step = run_step(make, concurrency, args.requests, args.seconds)
        steps.append(step)
        if not step.sustainable(args.p99_ms):
            break  # more clients only queue more
    _print_steps(steps, args.p99_ms)
    saturated = knee(steps)
    shed = sum(s.error_codes.get("503", 0) for s in steps)
    total = sum(s.requests for s in steps)
    if saturated is not None:
        print(
            f"knee: concurrency {saturated.concurrency} ({saturated.rps:.2f} requests/s, p99 {saturated.p99_ms:.0f} ms); "
            f"shed rate over the run {shed / total if total else 0:.1%} ({shed} of {total} requests answered 503)"
        )
    sustainable = [s for s in steps if s.sustainable(args.p99_ms)]
    advice = None
    if sustainable:
        best = max(sustainable, key=lambda s: s.rps)
        advice = advise(
            best,
            safety_factor=args.safety_factor,
            peak_rps=args.peak_rps,
            min_capacity=args.min_capacity,
            precision=precision,
        )
        print(
            f"\nmax sustainable ({advice.precision}): {advice.max_rps_per_instance:.2f} requests/s per instance at concurrency "
            f"{advice.concurrency} (0 errors, p99 {best.p99_ms:.0f} ms <= {args.p99_ms:g} ms)"
        )
        print(
            f"SageMakerVariantInvocationsPerInstance target: {advice.invocations_per_instance_target:g} per minute "
            f"(= {advice.max_rps_per_instance:.2f} x {advice.safety_factor:g} x 60)"
        )
        if advice.max_capacity is not None:
            print(
                f"capacity for a peak of {args.peak_rps:g} requests/s: min {advice.min_capacity}, "
                f"max {advice.max_capacity}"
            )
        print(
            f"stage config (infra/stages.py, a stage with endpoint.precision={advice.precision}; endpoint.autoscaling): "
            f"measured_max_rps_per_instance={advice.max_rps_per_instance}, "
            f"measured_precision={advice.precision!r}, safety_factor={advice.safety_factor}"
            + (
                f", min_capacity={advice.min_capacity}, max_capacity={advice.max_capacity}"
                if advice.max_capacity is not None
                else ""
            )
        )
    elif steps and stopped_answering(steps[-1]):
        print(
            f"\nevery request of the last step failed without an answer ({steps[-1].error_codes}): the target "
            "stopped answering during the run; see its log",
            file=sys.stderr,
        )
    else:
        print(
            "\nno step was sustainable (0 errors and p99 within the bound): raise --p99-ms, send a smaller "
            "image, or use a larger instance type",
            file=sys.stderr,
        )
    if args.json:
        doc: dict[str, Any] = {
            "steps": [asdict(s) for s in steps],
            "p99_bound_ms": args.p99_ms,
            "knee_concurrency": saturated.concurrency if saturated else None,
            "shed_rate": {str(s.concurrency): round(s.shed_rate, 4) for s in steps},
            "advice": asdict(advice) if advice else None,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return cli.EXIT_OK if advice else cli.EXIT_CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
