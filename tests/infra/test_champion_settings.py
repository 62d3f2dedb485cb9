"""The champion comparison's stage settings (training.champion_*): checked at synth, the stage and field named."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, load_stage
from infra.stages import STAGES


def _training(name: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(STAGES[name])
    values["training"] = {**values["training"], **changes}
    return values


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("champion_map_drop_tolerance", 0.08, "less than or equal to 0.05"),
        ("champion_map_drop_tolerance", -0.01, "greater than or equal to 0"),
        ("champion_class_drop_tolerance", 0.3, "less than or equal to 0.2"),
        ("champion_min_class_instances", 0, "greater than or equal to 1"),
        ("champion_confidence", 0.5, "greater than or equal to 0.8"),
        ("champion_confidence", 1.0, "less than or equal to 0.999"),
    ],
)
def test_champion_settings_out_of_range_are_refused_naming_stage_and_field(
    field: str, value: float, expected: str
) -> None:
    with pytest.raises(ConfigError, match=rf"stage Prod: field 'training.{field}': .*{expected}"):
        load_stage("Prod", _training("Prod", **{field: value}))


def test_each_stage_states_its_tolerances_and_later_stages_are_no_looser() -> None:
    training = {name: load_stage(name, values).training for name, values in STAGES.items()}
    for name in STAGES:
        training_values: Any = STAGES[name]["training"]
        assert "champion_map_drop_tolerance" in training_values, name
    assert training["Prod"].champion_map_drop_tolerance <= training["Staging"].champion_map_drop_tolerance
    assert training["Prod"].champion_class_drop_tolerance <= training["Staging"].champion_class_drop_tolerance
