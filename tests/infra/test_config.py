"""Stage config validation: every shipped stage is valid; an impossible value fails with the stage and field named."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, check_promotion_order, load_stage
from infra.stages import STAGES


def _with(name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in STAGES[name].items()}
    node = values
    for key in path[:-1]:
        node[key] = dict(node[key])
        node = node[key]
    node[path[-1]] = value
    return values


@pytest.mark.parametrize("name", list(STAGES))
def test_shipped_stage_config_is_valid(name: str) -> None:
    assert load_stage(name, STAGES[name]).name == name


def test_min_capacity_above_max_names_stage_and_field() -> None:
    values = _with(
        "Staging",
        ("endpoint", "autoscaling"),
        {"min_capacity": 5, "max_capacity": 2, "invocations_per_instance_target": 100},
    )
    with pytest.raises(
        ConfigError, match=r"stage Staging: field 'endpoint.autoscaling'.*min_capacity \(5\) > max"
    ):
        load_stage("Staging", values)


def test_unknown_instance_family_names_stage_and_field() -> None:
    values = _with("Prod", ("endpoint", "instance_type"), "ml.zz9.xlarge")
    with pytest.raises(
        ConfigError, match=r"stage Prod: field 'endpoint.instance_type'.*unknown instance family 'zz9'"
    ):
        load_stage("Prod", values)


def test_malformed_training_instance_type_names_stage_and_field() -> None:
    values = _with("Dev", ("training", "instance_type"), "g5.xlarge")
    with pytest.raises(ConfigError, match=r"stage Dev: field 'training.instance_type'"):
        load_stage("Dev", values)


def test_malformed_account_id_names_stage_and_field() -> None:
    with pytest.raises(ConfigError, match=r"stage Dev: field 'account'.*\[0-9\]\{12\}"):
        load_stage("Dev", {**STAGES["Dev"], "account": "12345"})


def test_malformed_pinned_image_names_stage_and_field() -> None:
    with pytest.raises(ConfigError, match=r"stage Prod: field 'images'.*images.serve"):
        load_stage("Prod", {**STAGES["Prod"], "images": {"serve": "serve:latest"}})


def test_unknown_field_is_rejected_with_its_name() -> None:
    with pytest.raises(ConfigError, match=r"stage Dev: field 'retain_dta'"):
        load_stage("Dev", {**STAGES["Dev"], "retain_dta": True})


def test_stages_differ_in_retention_as_data() -> None:
    retain = {name: load_stage(name, values).retain_data for name, values in STAGES.items()}
    assert retain == {"Dev": False, "Staging": True, "Prod": True}


def test_canary_on_a_single_instance_fleet_is_rejected_with_the_fix() -> None:
    values = _with(
        "Staging",
        ("endpoint",),
        {
            **STAGES["Staging"]["endpoint"],  # type: ignore[dict-item]
            "initial_instance_count": 1,
            "autoscaling": {"min_capacity": 1, "max_capacity": 4, "invocations_per_instance_target": 600},
            "deployment": {"strategy": "canary", "canary_percent": 10},
        },
    )
    with pytest.raises(
        ConfigError, match=r"stage Staging: field 'endpoint'.*50% limit; raise min_capacity to at least 2"
    ):
        load_stage("Staging", values)


def test_linear_step_below_one_instance_is_rejected() -> None:
    """Issue 22: Prod ran LINEAR 25% on a 2-instance fleet (half an instance per step); LinearStepSize must be
    10-50% of the variant's instances, at least one each."""
    endpoint = dict(STAGES["Prod"]["endpoint"])  # type: ignore[call-overload]
    endpoint["deployment"] = {"strategy": "linear", "linear_step_percent": 25, "wait_interval_s": 300}
    with pytest.raises(
        ConfigError, match=r"linear_step_percent 25% of 2 instance\(s\).* is 0.5 instance.*at least 50"
    ):
        load_stage("Prod", _with("Prod", ("endpoint",), endpoint))


def test_linear_rollout_longer_than_its_timeout_is_rejected() -> None:
    endpoint = dict(STAGES["Prod"]["endpoint"])  # type: ignore[call-overload]
    endpoint["deployment"] = {"strategy": "linear", "linear_step_percent": 50, "wait_interval_s": 3600}
    with pytest.raises(ConfigError, match=r"stage Prod: field 'endpoint'.*2 wait interval\(s\) of 3600 s"):
        load_stage("Prod", _with("Prod", ("endpoint",), endpoint))


def test_model_key_outside_the_readable_prefixes_is_rejected() -> None:
    endpoint = dict(STAGES["Dev"]["endpoint"])  # type: ignore[call-overload]
    endpoint["model_data_key"] = "data-capture/model.tar.gz"
    with pytest.raises(ConfigError, match=r"stage Dev: field 'endpoint'.*must start with one of \['models/'"):
        load_stage("Dev", _with("Dev", ("endpoint",), endpoint))


def test_stage_default_autobatch_on_a_multi_gpu_training_instance_names_stage_and_field() -> None:
    training = {**STAGES["Staging"]["training"], "instance_type": "ml.g5.12xlarge"}  # type: ignore[dict-item]
    training["default_hyperparameters"] = {"epochs": "10", "batch": "-1"}
    with pytest.raises(
        ConfigError,
        match=r"stage Staging: field 'training'.*batch=-1 \(AutoBatch\) on ml.g5.12xlarge, which has 4",
    ):
        load_stage("Staging", _with("Staging", ("training",), training))


@pytest.mark.parametrize("name", list(STAGES))
def test_shipped_stages_serve_fp32(name: str) -> None:
    """fp32 everywhere: Dev runs what Prod runs, and int8 on a GPU is refused until measured (test below)."""
    assert load_stage(name, STAGES[name]).endpoint.precision == "fp32"


def _int8_on_cpu(name: str, *, measured: str = "int8") -> dict[str, object]:
    """The stage's endpoint serving int8 on a CPU family (int8 on a GPU family is refused until measured)."""
    endpoint = dict(STAGES[name]["endpoint"])  # type: ignore[call-overload]
    endpoint.update(precision="int8", instance_type="ml.c6i.xlarge")
    endpoint["autoscaling"] = {**endpoint["autoscaling"], "measured_precision": measured}
    return endpoint


def test_a_capacity_measured_at_another_precision_is_refused_with_the_fix() -> None:
    endpoint = _int8_on_cpu("Prod", measured="fp32")
    with pytest.raises(
        ConfigError,
        match=r"stage Prod: field 'endpoint'.*autoscaling.measured_precision is fp32 .* but precision is int8.*"
        r"--precision int8",
    ):
        load_stage("Prod", _with("Prod", ("endpoint",), endpoint))


def test_a_capacity_measured_at_the_endpoint_precision_is_accepted() -> None:
    endpoint = _int8_on_cpu("Prod")
    assert load_stage("Prod", _with("Prod", ("endpoint",), endpoint)).endpoint.precision == "int8"


def test_int8_on_a_gpu_family_nobody_measured_is_refused() -> None:
    endpoint = {**_int8_on_cpu("Prod"), "instance_type": "ml.g5.xlarge"}
    with pytest.raises(
        ConfigError,
        match=r"stage Prod: field 'endpoint'.*precision int8 on ml.g5.xlarge: int8 has not been measured on the g5 "
        r"GPU.*make gpu-check",
    ):
        load_stage("Prod", _with("Prod", ("endpoint",), endpoint))


def test_prod_precision_that_no_earlier_stage_serves_is_refused() -> None:
    stages = {name: load_stage(name, values) for name, values in STAGES.items()}
    stages["Staging"] = load_stage(
        "Staging",
        _with("Staging", ("endpoint",), {**STAGES["Staging"]["endpoint"], "instance_type": "ml.c6i.xlarge"}),  # type: ignore[dict-item]
    )
    stages["Prod"] = load_stage("Prod", _with("Prod", ("endpoint",), _int8_on_cpu("Prod")))
    with pytest.raises(
        ConfigError,
        match=r"Prod field 'endpoint.precision' is int8 on family c6i, which no earlier stage on that family and "
        r"AMI serves \(Dev: fp32, Staging: fp32\)",
    ):
        check_promotion_order(stages)


def test_prod_int8_after_int8_on_its_family_passes_the_promotion_order() -> None:
    stages = {name: load_stage(name, values) for name, values in STAGES.items()}
    for name in ("Staging", "Prod"):
        stages[name] = load_stage(name, _with(name, ("endpoint",), _int8_on_cpu(name)))
    check_promotion_order(stages)  # Dev serves fp32 on c6i too; Staging's int8 on c6i is what counts


def test_default_hyperparameters_looser_than_the_stage_int8_cap_are_refused() -> None:
    training = {**STAGES["Dev"]["training"], "default_hyperparameters": {"int8_max_map_drop": "0.02"}}  # type: ignore[dict-item]
    with pytest.raises(
        ConfigError,
        match=r"stage Dev: field 'training'.*int8_max_map_drop=0.02 is above this stage's cap 0.01",
    ):
        load_stage("Dev", _with("Dev", ("training",), training))


def test_a_stage_may_loosen_its_int8_cap_only_within_its_limit() -> None:
    training = {**STAGES["Dev"]["training"], "int8_map_drop_cap": 0.5}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"stage Dev: field 'training.int8_map_drop_cap'"):
        load_stage("Dev", _with("Dev", ("training",), training))
