"""infra/max_in_force.py: the max capacity in force per minute as metric math (daily and weekly schedules), and the
refusal of a schedule whose expression CloudWatch would not take."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.config import ConfigError, ScheduledCapacity
from infra.max_in_force import max_in_force_expression
from tests.infra.synthesized import make_stage_config


def action(name: str, schedule: str, high: int) -> ScheduledCapacity:
    return ScheduledCapacity(name=name, schedule=schedule, min_capacity=1, max_capacity=high)


def evaluate(expression: str, when: datetime) -> int:
    """CloudWatch's HOUR/MINUTE/DAY (1 Monday .. 7 Sunday, UTC) and per-datapoint IF, at one timestamp."""
    python = (
        expression.replace("HOUR(m)", str(when.hour))
        .replace("MINUTE(m)", str(when.minute))
        .replace("DAY(m)", str(when.isoweekday()))
    )
    return int(eval(python, {"IF": lambda c, a, b: a if c else b}))


def test_a_daily_schedule_is_keyed_by_the_minute_of_the_day() -> None:
    scheduled = [action("day", "cron(30 7 ? * * *)", 8), action("night", "cron(0 20 ? * * *)", 4)]
    expression = max_in_force_expression("m", scheduled, 8)
    assert "DAY(" not in expression
    wednesday = datetime(2026, 12, 2, tzinfo=UTC)
    for hour, minute, expected in [(7, 29, 4), (7, 30, 8), (19, 59, 8), (20, 0, 4), (0, 0, 4)]:
        assert evaluate(expression, wednesday.replace(hour=hour, minute=minute)) == expected, (hour, minute)


def test_a_weekday_schedule_is_keyed_by_the_minute_of_the_week() -> None:
    """Weekends keep the night's max from Friday evening to Monday morning."""
    scheduled = [
        action("weekdays", "cron(0 7 ? * MON-FRI *)", 8),
        action("evenings", "cron(0 19 ? * MON-FRI *)", 3),
    ]
    expression = max_in_force_expression("m", scheduled, 8)
    assert "DAY(m)" in expression
    friday_noon, saturday_noon = datetime(2026, 12, 4, 12, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert evaluate(expression, friday_noon) == 8
    assert evaluate(expression, saturday_noon) == 3
    assert evaluate(expression, datetime(2026, 12, 7, 6, 59, tzinfo=UTC)) == 3  # Monday before 07:00


def test_a_schedule_too_fragmented_for_cloudwatch_is_refused_naming_the_field() -> None:
    scheduled = [action("even", "cron(0/2 * ? * * *)", 8), action("odd", "cron(1/2 * ? * * *)", 4)]
    with pytest.raises(ValueError, match=r"autoscaling.scheduled: .* CloudWatch allows 2048"):
        max_in_force_expression("m", scheduled, 8)


def test_a_stage_whose_schedule_the_alarm_could_not_follow_is_refused_with_its_config() -> None:
    """Refused when the stage config loads (make synth, every command), not halfway through a synth."""
    fragmented = [
        {"name": "even", "schedule": "cron(0/2 * ? * * *)", "min_capacity": 2, "max_capacity": 8},
        {"name": "odd", "schedule": "cron(1/2 * ? * * *)", "min_capacity": 2, "max_capacity": 4},
    ]
    with pytest.raises(
        ConfigError, match=r"stage Prod: .*autoscaling.scheduled: the capacity-at-max alarm's"
    ):
        make_stage_config("Prod", endpoint={"autoscaling": {"scheduled": fragmented}})
