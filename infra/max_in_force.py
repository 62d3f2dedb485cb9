"""The endpoint's max capacity in force at each minute, as a CloudWatch metric math expression, so the capacity-at-max
alarm compares the fleet with the max of the scheduled window it is in (e.g. 8 by day, 4 at night), not the day's.

Why one alarm over an expression, not one alarm per window: an alarm evaluates all the time and CloudWatch has no
schedule for alarms, so per-window alarms would still need the time of day inside their metric. Metric math has it:
``HOUR(m)``, ``MINUTE(m)`` and ``DAY(m)`` give the hour, minute and day of the week (1 Monday .. 7 Sunday) of each
datapoint's timestamp (UTC), and ``IF(condition, a, b)`` picks per datapoint ("Using math expressions with
CloudWatch metrics", Amazon CloudWatch User Guide, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html,
and "Enhance CloudWatch metrics with metric math functions", AWS Cloud Operations Blog,
https://aws.amazon.com/blogs/mt/enhance-cloudwatch-metrics-with-metric-math-functions/, read 2026-12-05). The
scheduled actions fire in UTC (infra/constructs/endpoint_scaling.py sets no time zone), the same clock.

The windows come from infra/schedule.py (which action holds at each minute of a reference week). After a stack
update the bounds are the config's min/max until the next firing (at most an hour, config's check_schedule): for that
hour the alarm may compare against the lower scheduled max.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from infra.schedule import WEEK_MIN, ScheduledAction, in_force_over_week

DAY_MIN = 24 * 60
# MetricDataQuery Expression: "Length Constraints: Minimum length of 1. Maximum length of 2048." (Amazon CloudWatch
# API Reference, MetricDataQuery, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDataQuery.html).
MAX_EXPRESSION_CHARS = 2048


class ScheduledMax(ScheduledAction, Protocol):
    """What this module reads of a scheduled action (infra.config.ScheduledCapacity): its name, schedule and max."""

    @property
    def max_capacity(self) -> int: ...


@dataclass(frozen=True)
class Run:
    """From ``start`` (minute of the day or week) on, ``max_capacity`` is in force until the next run starts."""

    start: int
    max_capacity: int


def max_by_minute(scheduled: Sequence[ScheduledMax], default_max: int) -> list[int]:
    """The max capacity in force at each minute of the week (Monday 00:00 UTC first); ``default_max`` (the config's)
    where no action has fired yet."""
    bounds = {action.name: action.max_capacity for action in scheduled}
    return [default_max if name is None else bounds[name] for name in in_force_over_week(scheduled)]


def runs(values: Sequence[int]) -> list[Run]:
    """Consecutive minutes of one max, as runs."""
    out: list[Run] = []
    for minute, value in enumerate(values):
        if not out or out[-1].max_capacity != value:
            out.append(Run(minute, value))
    return out


def max_in_force_expression(metric_id: str, scheduled: Sequence[ScheduledMax], default_max: int) -> str:
    """A metric math expression of the max in force at each datapoint of ``metric_id``. A schedule that repeats
    every day is keyed by the minute of the day; any other by the minute of the week. Refused (ValueError naming the
    field) when the expression would exceed CloudWatch's limit."""
    week = max_by_minute(scheduled, default_max)
    daily = all(week[d * DAY_MIN : (d + 1) * DAY_MIN] == week[:DAY_MIN] for d in range(WEEK_MIN // DAY_MIN))
    minute_of_day = f"(HOUR({metric_id}) * 60 + MINUTE({metric_id}))"
    key = minute_of_day if daily else f"((DAY({metric_id}) - 1) * {DAY_MIN} + {minute_of_day})"
    spans = runs(week[:DAY_MIN] if daily else week)
    expression = str(spans[-1].max_capacity)
    for current, following in reversed(list(itertools.pairwise(spans))):
        expression = f"IF({key} < {following.start}, {current.max_capacity}, {expression})"
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(
            f"autoscaling.scheduled: the capacity-at-max alarm's max-in-force expression would be {len(expression)} "
            f"characters over {len(spans)} windows, CloudWatch allows {MAX_EXPRESSION_CHARS} (MetricDataQuery "
            "Expression); use fewer distinct windows, e.g. the same schedule every day"
        )
    return expression


def windows_summary(scheduled: Sequence[ScheduledMax]) -> str:
    """'business-hours 8, nights 4': each scheduled action's max, for the alarm's description."""
    return ", ".join(f"{action.name} {action.max_capacity}" for action in scheduled)
