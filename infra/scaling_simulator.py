"""Replay a traffic profile through a stage's endpoint autoscaling policy, before deploying it.

A pure-Python model of what Application Auto Scaling and SageMaker do with the settings in
``infra.config.AutoscalingSettings`` (no AWS, no aws_cdk), stepping in 10-second ticks:

- ``SageMakerVariantInvocationsPerInstance``: one datapoint per minute (requests in the minute / in-service
  instances). Target tracking's high alarm fires after 3 consecutive datapoints above the target, its low alarm
  after 15 consecutive datapoints below 90 % of it (the alarms Application Auto Scaling creates for a policy).
- optional ``SageMakerVariantConcurrentRequestsPerModelHighResolution``: one datapoint per 10 s (Little's law:
  requests per second per instance x latency); high alarm after 3 datapoints (30 s), scale-in like the standard one.
- new capacity = ceil(in-service x metric / target) (target tracking's proportional rule), the largest of the
  policies on scale-out; scale-in only when every policy's low alarm is on; clamped to the current min/max.
- a scaling activity puts the endpoint in ``Updating`` for ``warmup_s`` (new instances are provisioned, pulled and
  health-checked); SageMaker accepts no other capacity change meanwhile. Removed instances leave at once.
- cooldowns: no scale-out within ``scale_out_cooldown_s`` of the previous scale-out's start, no scale-in within
  ``scale_in_cooldown_s`` of the previous scaling activity; ``disable_scale_in`` never scales in.
- scheduled actions (``cron(...)``/``at(...)``/``rate(...)``, UTC) set min/max and move capacity into the new bounds;
  the bounds at the start are those of the last action that fired in the week before.

Simplifications (say so when quoting results): metrics have no publication delay, every request in a minute arrives
at an even rate, instances billed from the start of their provisioning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.contracts.artifact import Precision
from infra.config import AutoscalingSettings, ScheduledCapacity
from infra.schedule import Schedule

TICK_S = 10
HIGH_ALARM_DATAPOINTS = 3
LOW_ALARM_DATAPOINTS = 15
LOW_ALARM_FRACTION = 0.9

# Approximate on-demand prices of SageMaker real-time inference instances, USD per hour, us-east-1, as listed on
# https://aws.amazon.com/sagemaker/pricing/ in 2025. APPROXIMATE: for comparing configs, not for budgets.
APPROX_ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c6i.large": 0.102,
    "ml.c6i.xlarge": 0.204,
    "ml.c6i.2xlarge": 0.408,
    "ml.c7i.large": 0.107,
    "ml.c7i.xlarge": 0.214,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m6i.large": 0.115,
    "ml.m6i.xlarge": 0.23,
    "ml.g4dn.xlarge": 0.736,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g6.xlarge": 1.164,
    "ml.inf2.xlarge": 0.99,
}


# ----------------------------------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class ScalingPolicy:
    """What the simulator needs of a stage's autoscaling settings, plus the facts about the instances."""

    min_capacity: int
    max_capacity: int
    invocations_target: float  # per instance per minute
    concurrency_target: float | None = None
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60
    disable_scale_in: bool = False
    scheduled: tuple[ScheduledCapacity, ...] = ()
    max_rps_per_instance: float = math.inf  # what one instance sustains (capacity for "over capacity")
    latency_s: float = 0.1  # per request, for the concurrency metric (Little's law)
    warmup_s: int = 300  # provisioning + image pull + health check of a new instance
    capacity_source: str = "given"  # where max_rps_per_instance comes from, for the report

    @classmethod
    def from_settings(
        cls,
        settings: AutoscalingSettings,
        *,
        precision: Precision = "fp32",
        max_rps_per_instance: float | None = None,
        latency_s: float = 0.1,
        warmup_s: int = 300,
    ) -> ScalingPolicy:
        """A stage's policy at the endpoint's ``precision``; capacity per instance = the max RPS measured at that
        precision, else target / 60 / safety factor. A measurement taken at another precision is refused (int8
        serves ~2.5x fp32 on a CPU: the simulation would be off by that factor)."""
        target = settings.invocations_target
        source = "--max-rps-per-instance"
        if max_rps_per_instance is None and settings.measured_max_rps_per_instance is not None:
            if settings.measured_precision != precision:
                raise ValueError(
                    f"autoscaling.measured_max_rps_per_instance was measured at {settings.measured_precision}, the "
                    f"endpoint serves {precision}: measure at {precision} or pass --max-rps-per-instance"
                )
            max_rps_per_instance = settings.measured_max_rps_per_instance
            source = f"measured at {precision}"
        elif max_rps_per_instance is None:
            max_rps_per_instance = target / 60 / settings.safety_factor
            source = "target / 60 / safety_factor, not measured"
        return cls(
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
            invocations_target=target,
            concurrency_target=settings.concurrency_target,
            scale_in_cooldown_s=settings.scale_in_cooldown_s,
            scale_out_cooldown_s=settings.scale_out_cooldown_s,
            disable_scale_in=settings.disable_scale_in,
            scheduled=settings.scheduled,
            max_rps_per_instance=max_rps_per_instance,
            latency_s=latency_s,
            warmup_s=warmup_s,
            capacity_source=source,
        )


# ------------------------------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class ScalingEvent:
    time_s: int
    reason: str  # "scale-out", "scale-in", "schedule:<name>"
    from_capacity: int
    to_capacity: int


@dataclass
class SimulationResult:
    """Per-tick series (every TICK_S seconds) and the totals ops look at."""

    start: datetime
    policy: ScalingPolicy
    time_s: list[int] = field(default_factory=list)
    offered_rps: list[float] = field(default_factory=list)
    in_service: list[int] = field(default_factory=list)
    desired: list[int] = field(default_factory=list)
    min_bound: list[int] = field(default_factory=list)
    max_bound: list[int] = field(default_factory=list)
    events: list[ScalingEvent] = field(default_factory=list)

    @property
    def minutes_over_capacity(self) -> float:
        cap = self.policy.max_rps_per_instance
        return (
            sum(TICK_S for rps, n in zip(self.offered_rps, self.in_service, strict=True) if rps > n * cap)
            / 60
        )

    @property
    def requests_over_capacity(self) -> float:
        """Requests beyond what the in-service instances sustain (answered slowly, with 503s, or not at all)."""
        cap = self.policy.max_rps_per_instance
        return sum(
            max(0.0, rps - n * cap) * TICK_S for rps, n in zip(self.offered_rps, self.in_service, strict=True)
        )

    @property
    def instance_hours(self) -> float:
        """Billed instance-hours: in-service plus provisioning instances."""
        return sum(max(d, n) for d, n in zip(self.desired, self.in_service, strict=True)) * TICK_S / 3600

    def cost_usd(self, instance_type: str, price_per_hour: float | None = None) -> float | None:
        """Approximate on-demand cost; None when the instance type is not in the table and no price is given."""
        price = (
            price_per_hour if price_per_hour is not None else APPROX_ON_DEMAND_USD_PER_HOUR.get(instance_type)
        )
        return None if price is None else self.instance_hours * price

    def first_time_at(self, capacity: int) -> int | None:
        """Seconds from the start until `capacity` instances are in service (None if never)."""
        return next((t for t, n in zip(self.time_s, self.in_service, strict=True) if n >= capacity), None)


def _last_schedule_before(
    scheduled: Sequence[ScheduledCapacity], start: datetime
) -> ScheduledCapacity | None:
    """The scheduled action that fired last in the week before `start` (Application Auto Scaling keeps it)."""
    schedules = [(s, Schedule(s.schedule)) for s in scheduled]
    t = start - timedelta(minutes=1)
    for _ in range(7 * 24 * 60):
        for action, schedule in schedules:
            if schedule.fires(t):
                return action
        t -= timedelta(minutes=1)
    return None


def simulate(
    policy: ScalingPolicy, requests_per_minute: Sequence[float], *, start: datetime | None = None
) -> SimulationResult:
    """Replay `requests_per_minute` (one value per minute, from `start`, UTC) through `policy`."""
    start = start or datetime(2025, 1, 6, tzinfo=UTC)  # a Monday, 00:00 UTC
    if any(not math.isfinite(r) or r < 0 for r in requests_per_minute):
        raise ValueError("requests_per_minute: every value must be a finite number >= 0")
    schedules = [(s, Schedule(s.schedule)) for s in policy.scheduled]
    lo, hi = policy.min_capacity, policy.max_capacity
    if (initial := _last_schedule_before(policy.scheduled, start)) is not None:
        lo, hi = initial.min_capacity, initial.max_capacity
    result = SimulationResult(start=start, policy=policy)
    in_service = desired = lo
    ready_at: int | None = None  # end of the current Updating period
    last_out = last_any = -(10**9)
    # Datapoints as (per-instance value, fleet total): the alarms look at the first, the new capacity follows the
    # second (so a datapoint measured before a scale-out finished does not scale out twice).
    minute_points: list[tuple[float, float]] = []  # invocations per instance, one per finished minute
    conc_points: list[tuple[float, float]] = []  # concurrent requests per model, one per tick
    ticks_per_minute = 60 // TICK_S

    def begin(t: int, new: int, reason: str) -> None:
        nonlocal desired, in_service, ready_at, last_any, last_out
        result.events.append(ScalingEvent(t, reason, desired, new))
        if new > in_service:
            ready_at, last_out = t + policy.warmup_s, t
        else:
            in_service = new  # scale-in: instances leave at once
        desired, last_any = new, t

    def _decide(
        t: int, minutes: list[tuple[float, float]], ticks: list[tuple[float, float]], per_min: int
    ) -> None:
        """One evaluation of the target-tracking policies (standard and optional high-resolution)."""
        outs: list[int] = []
        ins: list[int] = []
        all_low = True
        for points, target, low_window in (
            (minutes, policy.invocations_target, LOW_ALARM_DATAPOINTS),
            (ticks, policy.concurrency_target, LOW_ALARM_DATAPOINTS * per_min),
        ):
            if target is None:
                continue
            needed = math.ceil(points[-1][1] / target - 1e-9) if points else desired
            recent = points[-HIGH_ALARM_DATAPOINTS:]
            if len(recent) == HIGH_ALARM_DATAPOINTS and all(p > target for p, _ in recent):
                outs.append(needed)
            window = points[-low_window:]
            all_low &= len(window) == low_window and all(p < LOW_ALARM_FRACTION * target for p, _ in window)
            ins.append(needed)
        grow = min(max(outs, default=desired), hi)
        if grow > desired and t - last_out >= policy.scale_out_cooldown_s:
            begin(t, grow, "scale-out")
        elif all_low and not policy.disable_scale_in and t - last_any >= policy.scale_in_cooldown_s:
            shrink = max(*ins, lo, 1)
            if shrink < desired:
                begin(t, shrink, "scale-in")

    for tick in range(len(requests_per_minute) * ticks_per_minute):
        t = tick * TICK_S
        minute, now = tick // ticks_per_minute, start + timedelta(seconds=t)
        rpm = requests_per_minute[minute]
        if ready_at is not None and t >= ready_at:
            in_service, ready_at = desired, None
        updating = ready_at is not None
        if tick % ticks_per_minute == 0:
            for action, schedule in schedules:
                if schedule.fires(now):
                    lo, hi = action.min_capacity, action.max_capacity
                    clamped = min(max(desired, lo), hi)
                    if clamped != desired and not updating:
                        begin(t, clamped, f"schedule:{action.name}")
                        updating = ready_at is not None
            if tick > 0:  # the minute that just ended, over the instances that served it
                served_by = sum(result.in_service[-ticks_per_minute:]) / ticks_per_minute
                previous = requests_per_minute[minute - 1]
                minute_points.append((previous / max(served_by, 1), previous))
        concurrency = rpm / 60 * policy.latency_s
        conc_points.append((concurrency / max(in_service, 1), concurrency))

        if not updating:
            if desired < lo or desired > hi:  # bounds a schedule moved while the endpoint was Updating
                begin(t, min(max(desired, lo), hi), "bounds")
            else:
                _decide(t, minute_points, conc_points, ticks_per_minute)
        result.time_s.append(t)
        result.offered_rps.append(rpm / 60)
        result.in_service.append(in_service)
        result.desired.append(desired)
        result.min_bound.append(lo)
        result.max_bound.append(hi)
    return result
