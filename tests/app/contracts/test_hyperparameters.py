"""hyperparameters.json as SageMaker writes it (all strings, sometimes JSON-encoded) -> typed Hyperparameters."""

from __future__ import annotations

import pytest

from app.contracts.hyperparameters import (
    HyperparameterError,
    Hyperparameters,
    parse_hyperparameters,
    to_sagemaker,
)


def test_strings_become_typed_values() -> None:
    hp = parse_hyperparameters(
        {"epochs": "3", "lr0": "0.002", "cos_lr": "true", "device": "0,1", "imgsz": "320"}
    )
    assert (hp.epochs, hp.lr0, hp.cos_lr, hp.device, hp.imgsz) == (3, 0.002, True, "0,1", 320)


def test_sdk_json_encoded_strings_are_decoded() -> None:
    hp = parse_hyperparameters({"model": '"yolov8s.yaml"', "epochs": '"5"', "amp": "false"})
    assert (hp.model, hp.epochs, hp.amp) == ("yolov8s.yaml", 5, False)


def test_defaults_when_nothing_given() -> None:
    assert parse_hyperparameters({}) == Hyperparameters()


@pytest.mark.parametrize(("raw", "expected"), [("true", "ram"), ("false", "false"), ("disk", "disk")])
def test_cache_accepts_booleans_and_modes(raw: str, expected: str) -> None:
    assert parse_hyperparameters({"cache": raw}).cache == expected


@pytest.mark.parametrize("raw", ["", "none", "null"])
def test_freeze_empty_means_no_freezing(raw: str) -> None:
    assert parse_hyperparameters({"freeze": raw}).freeze is None


def test_unknown_name_fails_with_the_name() -> None:
    with pytest.raises(HyperparameterError, match=r"unknown hyperparameter\(s\) \['lr'\]"):
        parse_hyperparameters({"lr": "0.1"}, source="hp.json")


@pytest.mark.parametrize(
    ("name", "value"),
    [("epochs", "ten"), ("imgsz", "100"), ("batch", "-2"), ("optimizer", "adam"), ("name", "a b")],
)
def test_invalid_value_fails_naming_field_and_value(name: str, value: str) -> None:
    with pytest.raises(HyperparameterError, match=rf"hp.json: hyperparameter '{name}'='{value}'"):
        parse_hyperparameters({name: value}, source="hp.json")


def test_to_sagemaker_round_trips_through_parse() -> None:
    hp = Hyperparameters(epochs=7, cos_lr=True, lr0=0.003, freeze=10)
    raw = to_sagemaker({k: v for k, v in hp.model_dump().items() if v is not None})
    assert all(isinstance(v, str) for v in raw.values())
    assert parse_hyperparameters(raw) == hp
