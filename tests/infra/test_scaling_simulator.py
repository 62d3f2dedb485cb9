"""The autoscaling simulator against traffic whose outcome can be worked out by hand.

Step from 0 to 30 rps (1800 requests/min) at minute 10, target 600 invocations/instance/min, warm-up 300 s:
datapoints for minutes 10, 11, 12 are above target -> the high alarm fires at 13:00 (780 s) -> new capacity
ceil(1800 / 600) = 3 -> in service at 780 + 300 = 1080 s. Runtime: ~2 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.config import AutoscalingSettings, ScheduledCapacity
from infra.scaling_simulator import ScalingPolicy, simulate
from infra.schedule import Schedule, ScheduleError
from scripts import simulate_autoscaling

MONDAY = datetime(2025, 1, 6, tzinfo=UTC)
STEP = [0.0] * 10 + [1800.0] * 30  # 0 rps for 10 min, then 30 rps


def policy(**overrides: object) -> ScalingPolicy:
    values: dict[str, object] = {
        "min_capacity": 1,
        "max_capacity": 10,
        "invocations_per_instance_target": 600,
    }
    values.update({k: v for k, v in overrides.items() if k in AutoscalingSettings.model_fields})
    extra = {k: v for k, v in overrides.items() if k not in AutoscalingSettings.model_fields}
    return ScalingPolicy.from_settings(AutoscalingSettings.model_validate(values), **extra)  # type: ignore[arg-type]


def test_step_scales_out_after_three_datapoints_to_load_over_target() -> None:
    result = simulate(policy(), STEP, start=MONDAY)
    assert [(e.time_s, e.reason, e.from_capacity, e.to_capacity) for e in result.events] == [
        (780, "scale-out", 1, 3)
    ]


def test_step_capacity_is_in_service_after_warm_up() -> None:
    result = simulate(policy(warmup_s=300), STEP, start=MONDAY)
    assert result.first_time_at(3) == 780 + 300


def test_step_is_over_capacity_from_the_step_until_instances_are_in_service() -> None:
    # one instance sustains 600 / 60 / 0.5 = 20 rps < 30 rps: over capacity from 600 s to 1080 s = 8 min
    result = simulate(policy(), STEP, start=MONDAY)
    assert result.policy.max_rps_per_instance == 20
    assert result.minutes_over_capacity == pytest.approx(8.0)


def test_scale_out_is_capped_at_max_capacity() -> None:
    result = simulate(policy(max_capacity=2), STEP, start=MONDAY)
    assert max(result.in_service) == 2


def test_high_resolution_concurrency_policy_scales_out_after_30_seconds() -> None:
    # 30 rps x 0.4 s = 12 concurrent requests on one instance; target 4 -> 3 instances, alarm after 3 x 10 s
    result = simulate(policy(concurrency_target=4, latency_s=0.4), STEP, start=MONDAY)
    assert (result.events[0].time_s, result.events[0].to_capacity) == (620, 3)


def test_scale_out_waits_for_scale_out_cooldown() -> None:
    traffic = [0.0] * 10 + [1800.0] * 4 + [6000.0] * 30
    result = simulate(policy(warmup_s=0, scale_out_cooldown_s=600), traffic, start=MONDAY)
    assert [(e.time_s, e.to_capacity) for e in result.events] == [(780, 3), (780 + 600, 10)]


def test_scale_in_after_fifteen_low_minutes_to_load_over_target() -> None:
    # 5 instances for minutes 1-20, then load for 1: low datapoints for minutes 21..35 -> scale in at 36:00
    traffic = [600.0] + [3000.0] * 20 + [600.0] * 40
    result = simulate(policy(warmup_s=0, scale_in_cooldown_s=0), traffic, start=MONDAY)
    scale_ins = [e for e in result.events if e.reason == "scale-in"]
    assert [(e.time_s, e.to_capacity) for e in scale_ins] == [((21 + 15) * 60, 1)]


def test_disable_scale_in_keeps_capacity() -> None:
    traffic = [3000.0] * 20 + [600.0] * 40
    result = simulate(policy(disable_scale_in=True, warmup_s=0), traffic, start=MONDAY)
    assert result.in_service[-1] == 5


def test_scheduled_action_raises_min_at_its_time() -> None:
    morning = ScheduledCapacity(
        name="morning", schedule="at(2025-01-06T10:30:00)", min_capacity=4, max_capacity=10
    )
    result = simulate(
        policy(scheduled=(morning,), warmup_s=60), [0.0] * 60, start=MONDAY + timedelta(hours=10)
    )
    assert [(e.time_s, e.reason, e.to_capacity) for e in result.events] == [(1800, "schedule:morning", 4)]
    assert result.first_time_at(4) == 1800 + 60


def test_bounds_at_start_come_from_last_scheduled_action_before_it() -> None:
    nights = ScheduledCapacity(name="nights", schedule="cron(0 20 ? * * *)", min_capacity=3, max_capacity=3)
    result = simulate(policy(scheduled=(nights,)), [0.0] * 5, start=MONDAY)  # Sunday 20:00 fired before
    assert (result.min_bound[0], result.max_bound[0], result.in_service[0]) == (3, 3, 3)


def test_cron_day_of_week_uses_aws_numbering_and_names() -> None:
    weekdays = Schedule("cron(0 7 ? * MON-FRI *)")
    sunday = Schedule("cron(0 7 ? * 1 *)")
    assert weekdays.fires(MONDAY + timedelta(hours=7))
    assert not weekdays.fires(MONDAY - timedelta(hours=17))  # Sunday 07:00
    assert sunday.fires(MONDAY - timedelta(hours=17))


def test_malformed_schedule_is_rejected_with_the_expression() -> None:
    with pytest.raises(ScheduleError, match=r"cron\(0 25 \? \* \* \*\)"):
        Schedule("cron(0 25 ? * * *)")


def test_instance_hours_and_cost_of_a_constant_fleet() -> None:
    result = simulate(policy(min_capacity=2), [0.0] * 60, start=MONDAY)
    assert result.instance_hours == pytest.approx(2.0)
    assert result.cost_usd("ml.c6i.xlarge") == pytest.approx(2 * 0.204)
    assert result.cost_usd("ml.c6i.32xlarge") is None


def test_csv_with_a_bad_value_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "traffic.csv"
    path.write_text("requests_per_minute\n10\n-3\n")
    with pytest.raises(simulate_autoscaling.OperatorError, match=r"traffic.csv: line 3"):
        simulate_autoscaling.read_csv_profile(path)


def test_cli_replays_a_csv_and_writes_a_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traffic.csv"
    path.write_text(
        "timestamp,requests_per_minute\n"
        + "".join(f"2025-01-06T10:{m:02d}:00,{0 if m < 10 else 1800}\n" for m in range(40))
    )
    png = tmp_path / "out.png"
    assert simulate_autoscaling.main(["--stage", "Dev", "--csv", str(path), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "Mon 10:13:00  scale-out" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_capacity_measured_at_the_endpoint_precision_is_the_simulated_capacity() -> None:
    settings = AutoscalingSettings(
        measured_max_rps_per_instance=30, measured_precision="int8", min_capacity=1, max_capacity=2
    )
    policy = ScalingPolicy.from_settings(settings, precision="int8")
    assert (policy.max_rps_per_instance, policy.capacity_source) == (30, "measured at int8")


def test_capacity_measured_at_another_precision_is_refused() -> None:
    settings = AutoscalingSettings(measured_max_rps_per_instance=30, measured_precision="int8")
    with pytest.raises(ValueError, match=r"measured at int8, the endpoint serves fp32"):
        ScalingPolicy.from_settings(settings, precision="fp32")


def test_cli_says_at_which_precision_the_capacity_was_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_autoscaling.main(["--stage", "Prod", "--profile", "step"]) == 0
    assert "assumed: 60 rps per instance at fp32 (measured at fp32)" in capsys.readouterr().out
