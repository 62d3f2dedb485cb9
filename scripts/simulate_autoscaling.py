"""Judge a stage's endpoint autoscaling config before deploying it: replay a traffic profile through it.

    python -m scripts.simulate_autoscaling --stage Prod --profile spike --plot spike.png
    python -m scripts.simulate_autoscaling --stage Staging --csv traffic.csv   # column requests_per_minute

Prints the scaling activities, instance counts, minutes over capacity and approximate instance-hours cost; with
--plot, writes a PNG (traffic vs capacity, instance count vs bounds). The model and its simplifications:
infra/scaling_simulator.py. Every argument is checked before the simulation (a plot into a missing folder, a
negative price or warm-up fail at once).

Exit status (scripts/lib/cli.py): 0 ok, 1 error (a bad traffic CSV, a stage config that does not validate), 2 usage.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from infra.config import StageConfig, load_stage
from infra.scaling_simulator import APPROX_ON_DEMAND_USD_PER_HOUR, ScalingPolicy, SimulationResult, simulate
from infra.stages import STAGES
from scripts.lib import cli
from scripts.lib.cli import OperatorError

MONDAY = datetime(2025, 1, 6, tzinfo=UTC)
PROFILES = ("daily", "spike", "ramp", "step")


def builtin_profile(name: str, peak_rps: float) -> tuple[list[float], datetime]:
    """Requests per minute of a built-in profile and the (UTC) time it starts."""
    peak = peak_rps * 60
    if name == "daily":  # a weekday: 10 % at night, a smooth business-hours hump peaking at 13:00
        floor = 0.1 * peak
        hump = [
            max(0.0, math.sin(math.pi * (m / 60 - 6) / 14)) ** 2 if 6 <= m / 60 <= 20 else 0.0
            for m in range(24 * 60)
        ]
        return [floor + (peak - floor) * h for h in hump], MONDAY
    if name == "spike":  # 30 % for an hour, the peak for 30 min, 30 % for 90 min
        return [0.3 * peak] * 60 + [peak] * 30 + [0.3 * peak] * 90, MONDAY + timedelta(hours=10)
    if name == "ramp":  # 0 -> peak over 2 h, hold 1 h, back to 0 over 1 h
        up = [peak * m / 120 for m in range(120)]
        return up + [peak] * 60 + [peak * (1 - m / 60) for m in range(60)], MONDAY + timedelta(hours=10)
    if name == "step":  # idle 10 min, then the peak for 50 min: the scale-out time is easy to read off
        return [0.0] * 10 + [peak] * 50, MONDAY + timedelta(hours=10)
    raise OperatorError(f"--profile: expected one of {', '.join(PROFILES)}, got '{name}'")


def read_csv_profile(path: Path) -> tuple[list[float], datetime | None]:
    """A CSV with a ``requests_per_minute`` column (one row per minute) and optionally ``timestamp`` (UTC)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise OperatorError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise OperatorError(f"{path}: not a CSV file ({exc})") from None
    if "requests_per_minute" not in frame.columns:
        raise OperatorError(f"{path}: expected a 'requests_per_minute' column, found {list(frame.columns)}")
    values = pd.to_numeric(frame["requests_per_minute"], errors="coerce")
    bad = frame.index[values.isna() | (values < 0)]
    if len(bad):
        row = int(bad[0])
        raise OperatorError(
            f"{path}: line {row + 2}: requests_per_minute '{frame['requests_per_minute'][row]}' "
            "is not a number >= 0"
        )
    start = None
    if "timestamp" in frame.columns and len(frame):
        try:
            start = (
                pd.Timestamp(frame["timestamp"].iloc[0]).tz_localize(None).to_pydatetime().replace(tzinfo=UTC)
            )
        except ValueError:
            raise OperatorError(
                f"{path}: line 2: timestamp '{frame['timestamp'].iloc[0]}' is not a date-time"
            ) from None
    if not len(values):
        raise OperatorError(f"{path}: no rows")
    return [float(v) for v in values], start


def _clock(result: SimulationResult, t: int) -> str:
    return (result.start + timedelta(seconds=t)).strftime("%a %H:%M:%S")


def report(config: StageConfig, result: SimulationResult, *, profile: str, price: float | None) -> str:
    """The text ops read: policy, activities, capacity, cost."""
    p, endpoint = result.policy, config.endpoint
    lines = [f"stage {config.name}: {endpoint.instance_type}, capacity {p.min_capacity}..{p.max_capacity}"]
    for s in p.scheduled:
        lines.append(f"  scheduled {s.name}: {s.min_capacity}..{s.max_capacity} at {s.schedule} (UTC)")
    policies = f"InvocationsPerInstance target {p.invocations_target:g}/min"
    if p.concurrency_target:
        policies += f", ConcurrentRequestsPerModelHighResolution target {p.concurrency_target:g}"
    lines += [
        f"  policies: {policies}; cooldowns out {p.scale_out_cooldown_s} s / in {p.scale_in_cooldown_s} s"
        + (", scale-in disabled" if p.disable_scale_in else ""),
        f"  assumed: {p.max_rps_per_instance:g} rps per instance at {endpoint.precision} ({p.capacity_source}), "
        f"{p.latency_s * 1000:g} ms per request, "
        f"warm-up {p.warmup_s} s",
        f"profile {profile}: {len(result.time_s) * 10 // 60} min from {_clock(result, 0)} UTC, "
        f"peak {max(result.offered_rps):.1f} rps",
        "scaling activities:",
    ]
    lines += [
        f"  {_clock(result, e.time_s)}  {e.reason:<24} {e.from_capacity} -> {e.to_capacity}"
        for e in result.events
    ] or ["  (none)"]
    total = sum(result.offered_rps) * 10
    cost = result.cost_usd(endpoint.instance_type, price)
    rate = price if price is not None else APPROX_ON_DEMAND_USD_PER_HOUR.get(endpoint.instance_type)
    lines += [
        f"instances in service: min {min(result.in_service)}, max {max(result.in_service)}, "
        f"mean {sum(result.in_service) / len(result.in_service):.2f}",
        f"minutes over capacity: {result.minutes_over_capacity:.1f} "
        f"({result.requests_over_capacity:,.0f} of {total:,.0f} requests beyond capacity)",
        f"instance-hours: {result.instance_hours:.2f}"
        + (
            f", about ${cost:,.2f} at ${rate:g}/h ({'given' if price is not None else 'approximate on-demand, us-east-1'})"
            if cost is not None and rate is not None
            else f" (no price for {endpoint.instance_type}: pass --price-per-hour)"
        ),
    ]
    return "\n".join(lines)


def plot(result: SimulationResult, path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [t / 60 for t in result.time_s]
    capacity = [n * result.policy.max_rps_per_instance for n in result.in_service]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5), height_ratios=(3, 2))
    top.plot(minutes, result.offered_rps, label="offered load (rps)", color="tab:blue")
    top.step(minutes, capacity, where="post", label="in-service capacity (rps)", color="tab:green")
    over = [c < r for r, c in zip(result.offered_rps, capacity, strict=True)]
    top.fill_between(
        minutes,
        capacity,
        result.offered_rps,
        where=over,
        step="post",
        color="tab:red",
        alpha=0.3,
        label=f"over capacity ({result.minutes_over_capacity:.0f} min)",
    )
    top.set_ylabel("requests / s")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title)
    bottom.step(minutes, result.in_service, where="post", label="in service", color="tab:green")
    bottom.step(
        minutes,
        result.desired,
        where="post",
        label="desired (incl. warming up)",
        color="tab:orange",
        linestyle="--",
    )
    bottom.step(minutes, result.max_bound, where="post", label="max", color="grey", linestyle=":")
    bottom.step(minutes, result.min_bound, where="post", label="min", color="black", linestyle=":")
    bottom.set_ylabel("instances")
    bottom.set_xlabel(f"minutes from {result.start:%a %H:%M} UTC")
    bottom.set_ylim(0, max(result.max_bound) + 1)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date-time like 2025-01-06T09:00, got '{text}'"
        ) from None


def _png(text: str) -> Path:
    path = cli.output_file(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"{text}: expected a .png file name")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m scripts.simulate_autoscaling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stage", required=True, type=cli.stage_name, help=f"one of {', '.join(STAGES)} (infra/stages.py)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--profile",
        default="daily",
        choices=PROFILES,
        help=f"built-in traffic profile: {', '.join(PROFILES)} (default daily)",
    )
    source.add_argument(
        "--csv",
        type=cli.existing_file,
        help="CSV with a requests_per_minute column (+ optional timestamp)",
    )
    parser.add_argument(
        "--peak-rps",
        type=cli.positive_float,
        help="peak of a built-in profile (default: max capacity x target)",
    )
    parser.add_argument(
        "--start", type=_start, help="UTC start, e.g. 2025-01-06T09:00 (default: per profile / CSV timestamp)"
    )
    parser.add_argument(
        "--max-rps-per-instance",
        type=cli.positive_float,
        help="what one instance sustains (default: measured_max_rps_per_instance, measured at the stage's "
        "endpoint.precision, else target / 60 / safety_factor)",
    )
    parser.add_argument(
        "--latency-ms", type=cli.positive_float, default=100, help="per request, for the concurrency metric"
    )
    parser.add_argument(
        "--warmup-s", type=cli.non_negative_int, default=300, help="new instance to InService (default 300)"
    )
    parser.add_argument(
        "--price-per-hour",
        type=cli.non_negative_float,
        help="USD per instance-hour (default: approximate table)",
    )
    parser.add_argument("--plot", type=_png, help="write a PNG here (its folder must exist)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_stage(args.stage, STAGES[args.stage])  # ConfigError: one line naming stage and field
    policy = ScalingPolicy.from_settings(
        config.endpoint.autoscaling,
        precision=config.endpoint.precision,  # the capacity of the graph the endpoint serves
        max_rps_per_instance=args.max_rps_per_instance,
        latency_s=args.latency_ms / 1000,
        warmup_s=args.warmup_s,
    )
    if args.csv:
        traffic, start = read_csv_profile(args.csv)
        profile = str(args.csv)
    else:
        peak = (
            args.peak_rps
            if args.peak_rps is not None
            else policy.max_capacity * policy.invocations_target / 60
        )
        traffic, start = builtin_profile(args.profile, peak)
        profile = args.profile
    if args.start:
        start = args.start
    result = simulate(policy, traffic, start=start or MONDAY)
    print(report(config, result, profile=profile, price=args.price_per_hour))
    if args.plot:
        plot(result, args.plot, title=f"{config.name}: {profile} profile, {config.endpoint.instance_type}")
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
