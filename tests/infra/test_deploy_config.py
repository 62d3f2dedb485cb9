"""Stage-config rules a first real deploy depends on (issue 14): the deployment timeout counts provisioning, a canary
on a small fleet is an instance count, scheduled scaling does not fight CloudFormation's min/max and no window holds
longer than meant. Pure config validation: no synth, ~1 s."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import ConfigError, load_stage
from infra.stages import STAGES


def stage(name: str, **endpoint: Any) -> dict[str, Any]:
    """A copy of stage ``name`` with ``endpoint`` keys replaced (one level deep merge for dict values)."""
    values: dict[str, Any] = copy.deepcopy(dict(STAGES[name]))
    for key, value in endpoint.items():
        if isinstance(value, dict) and isinstance(values["endpoint"].get(key), dict):
            values["endpoint"][key] = {**values["endpoint"][key], **value}
        else:
            values["endpoint"][key] = value
    return values


# A canary needs a fleet of at least 2 (SageMaker: at most 50% of it); Staging serves on one GPU instance.
TWO_INSTANCES: dict[str, Any] = {
    "initial_instance_count": 2,
    "autoscaling": {"min_capacity": 2, "max_capacity": 4},
}


# ------------------------------------------------------------------------------------------------ 5 timeouts
def test_deployment_timeout_counts_model_download_and_startup_health_check() -> None:
    """Bake waits alone (2 x 300 s + 300 s) fit one hour; with 1800 s + 1800 s of provisioning they do not."""
    values = stage("Prod", model_download_timeout_s=1800, startup_health_check_timeout_s=1800)
    with pytest.raises(
        ConfigError, match=r"stage Prod: field 'endpoint'.*provisioning 4200 s .* = 5100 s exceed"
    ):
        load_stage("Prod", values)


def test_all_at_once_deployments_are_checked_against_their_timeout_too() -> None:
    values = stage(
        "Dev",
        model_download_timeout_s=3600,
        startup_health_check_timeout_s=3600,
        deployment={"max_execution_timeout_s": 3600},
    )
    with pytest.raises(
        ConfigError, match=r"stage Dev: field 'endpoint'.*exceed max_execution_timeout_s \(3600\)"
    ):
        load_stage("Dev", values)


def test_provisioning_allowance_is_stage_data() -> None:
    tight = stage("Staging", deployment={"provisioning_allowance_s": 3600, "max_execution_timeout_s": 3600})
    with pytest.raises(ConfigError, match=r"allowance 3600 s"):
        load_stage("Staging", tight)


# ------------------------------------------------------------------------------------------------ 11 canary
def test_percent_canary_smaller_than_one_instance_is_refused_with_the_instance_count_fix() -> None:
    values = stage(
        "Staging",
        **TWO_INSTANCES,
        deployment={"strategy": "canary", "canary_percent": 10, "canary_instances": None},
    )
    with pytest.raises(ConfigError, match=r"10% of 2 instance\(s\).*0.2 instance.*canary_instances: 1"):
        load_stage("Staging", values)


def test_instance_count_canary_is_validated_against_min_capacity() -> None:
    values = stage("Staging", **TWO_INSTANCES, deployment={"strategy": "canary", "canary_instances": 2})
    with pytest.raises(
        ConfigError,
        match=r"canary_instances 2 of 2 instance\(s\).*50% limit; raise min_capacity to at least 4",
    ):
        load_stage("Staging", values)


def test_canary_instances_outside_a_canary_is_refused() -> None:
    values = stage("Prod", deployment={"canary_instances": 1})
    with pytest.raises(ConfigError, match=r"canary_instances applies to strategy canary, not linear"):
        load_stage("Prod", values)


def test_a_one_instance_canary_on_a_two_instance_fleet_is_accepted() -> None:
    values = stage("Staging", **TWO_INSTANCES, deployment={"strategy": "canary", "canary_instances": 1})
    deployment = load_stage("Staging", values).endpoint.deployment
    assert (deployment.strategy, deployment.canary_instances) == ("canary", 1)


# ------------------------------------------------------------------------------------------------ 10 schedules
def schedules(*actions: dict[str, Any]) -> dict[str, Any]:
    return stage("Prod", autoscaling={"scheduled": list(actions)})


DAYS = {"name": "business-hours", "schedule": "cron(0 7 ? * * *)", "min_capacity": 2, "max_capacity": 8}
NIGHTS_HOURLY = {
    "name": "nights",
    "schedule": "cron(0 20-23,0-6 ? * * *)",
    "min_capacity": 2,
    "max_capacity": 4,
}


def test_shipped_prod_schedule_is_accepted() -> None:
    scheduled = load_stage("Prod", STAGES["Prod"]).endpoint.autoscaling.scheduled
    assert [a.name for a in scheduled] == ["business-hours", "nights"]


def test_base_bounds_must_be_a_state_the_schedule_produces() -> None:
    values = schedules({**DAYS, "min_capacity": 3}, NIGHTS_HOURLY)
    with pytest.raises(
        ConfigError,
        match=r"field 'endpoint'.*autoscaling.min_capacity..max_capacity \(2..8\) must be the bounds of one",
    ):
        load_stage("Prod", values)


def test_a_once_nightly_action_that_a_stack_update_would_undo_is_refused() -> None:
    values = schedules(DAYS, {**NIGHTS_HOURLY, "schedule": "cron(0 20 ? * * *)"})
    with pytest.raises(
        ConfigError, match=r"'nights' \(2..4\) .* 10 h 59 min without firing.*at least hourly"
    ):
        load_stage("Prod", values)


def test_night_bounds_holding_through_the_weekend_are_refused_unless_meant() -> None:
    weekdays = {**DAYS, "schedule": "cron(0 7 ? * MON-FRI *)"}
    with pytest.raises(ConfigError, match=r"'nights' stays in force 59 h 00 min \(from Fri 20:00 UTC\)"):
        load_stage("Prod", schedules(weekdays, NIGHTS_HOURLY))
    weekend = {**NIGHTS_HOURLY, "name": "weekend", "schedule": "cron(0 * ? * SAT,SUN *)"}
    with pytest.raises(ConfigError, match=r"'weekend' stays in force 48 h 00 min \(from Sat 00:00 UTC\)"):
        load_stage("Prod", schedules(weekdays, NIGHTS_HOURLY, weekend))
    meant = {**weekend, "max_hold_hours": 48}
    assert (
        len(load_stage("Prod", schedules(weekdays, NIGHTS_HOURLY, meant)).endpoint.autoscaling.scheduled) == 3
    )
