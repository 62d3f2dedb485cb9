"""hyperparameters.json as SageMaker writes it (all strings, sometimes JSON-encoded) -> typed Hyperparameters."""

from __future__ import annotations

import re

import pytest

from app.contracts.hyperparameters import (
    BAKED_CHECKPOINT,
    HyperparameterError,
    Hyperparameters,
    check_autobatch,
    parse_hyperparameters,
    to_sagemaker,
)


def test_strings_become_typed_values() -> None:
    hp = parse_hyperparameters(
        {"epochs": "3", "lr0": "0.002", "optimizer": "SGD", "cos_lr": "true", "device": "0,1", "imgsz": "320"}
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
    hp = Hyperparameters(epochs=7, cos_lr=True, lr0=0.003, optimizer="AdamW", freeze=10)
    raw = to_sagemaker({k: v for k, v in hp.model_dump().items() if v is not None})
    assert all(isinstance(v, str) for v in raw.values())
    assert parse_hyperparameters(raw) == hp


def test_default_start_is_the_baked_checkpoint_not_a_yaml() -> None:
    assert parse_hyperparameters({}).model == BAKED_CHECKPOINT
    assert BAKED_CHECKPOINT.endswith(".pt")


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        ({"device": "0"}, "device", "0"),
        ({"device": "0,1"}, "device", "0,1"),
        ({"device": '"0"'}, "device", "0"),  # the SageMaker SDK's JSON layer
        ({"device": 0}, "device", "0"),  # an operator's number
        ({"name": "2026"}, "name", "2026"),
        ({"model": "yolov8n.pt"}, "model", "yolov8n.pt"),
    ],
)
def test_digit_only_strings_stay_strings_for_string_fields(
    raw: dict[str, object], field: str, expected: str
) -> None:
    assert getattr(parse_hyperparameters(raw), field) == expected


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("yolo26n.yaml", "YOLO26"),
        ("yolo26s.pt", "YOLO26"),
        ("yolov10n.yaml", "YOLOv10"),
        ("YOLOv10s.pt", "YOLOv10"),
        ("rtdetr-l.yaml", "RT-DETR"),
    ],
)
def test_end_to_end_families_are_refused_naming_the_family(model: str, family: str) -> None:
    with pytest.raises(
        HyperparameterError, match=rf"'model'='{model}': .*is a {family} model: its end-to-end head"
    ):
        parse_hyperparameters({"model": model}, source="hp.json")


@pytest.mark.parametrize("model", ["yolov8n.yaml", "yolov8s.pt", "yolo11n.yaml", "yolo12n.yaml"])
def test_raw_layout_families_are_accepted(model: str) -> None:
    assert parse_hyperparameters({"model": model}).model == model


@pytest.mark.parametrize(
    "raw", [{"lr0": "0.001"}, {"momentum": "0.9"}, {"lr0": "0.001", "momentum": "0.9", "optimizer": "auto"}]
)
def test_lr0_or_momentum_with_optimizer_auto_is_refused_with_the_reason(raw: dict[str, str]) -> None:
    with pytest.raises(
        HyperparameterError, match=r"hp.json: (lr0|momentum).* given with optimizer=auto, which ignores"
    ):
        parse_hyperparameters(raw, source="hp.json")


def test_lr0_and_momentum_with_an_explicit_optimizer_are_kept() -> None:
    hp = parse_hyperparameters({"lr0": "0.001", "momentum": "0.9", "optimizer": "SGD"})
    assert (hp.lr0, hp.momentum) == (0.001, 0.9)


def test_autobatch_on_several_gpus_is_refused_up_front() -> None:
    with pytest.raises(HyperparameterError, match=r"batch=-1 \(AutoBatch\) with device='0,1'"):
        parse_hyperparameters({"batch": "-1", "device": "0,1"}, source="hp.json")


@pytest.mark.parametrize("device", ["", "0", "cpu"])
def test_autobatch_on_one_gpu_or_cpu_is_accepted(device: str) -> None:
    assert parse_hyperparameters({"batch": "-1", "device": device}).batch == -1


@pytest.mark.parametrize("instance_type", ["ml.g5.12xlarge", "ml.p4d.24xlarge"])
def test_autobatch_with_device_unset_on_a_multi_gpu_instance_is_refused(instance_type: str) -> None:
    params = parse_hyperparameters({"batch": "-1"})
    with pytest.raises(
        HyperparameterError, match=rf"batch=-1 \(AutoBatch\) on {re.escape(instance_type)}, which has"
    ):
        check_autobatch(params, instance_type)


@pytest.mark.parametrize(
    ("raw", "instance_type"),
    [
        ({"batch": "-1"}, "ml.g5.xlarge"),  # one GPU
        ({"batch": "-1", "device": "0"}, "ml.g5.12xlarge"),  # one GPU of four, chosen
        ({"batch": "32"}, "ml.g5.12xlarge"),  # a fixed batch splits across the GPUs
    ],
)
def test_autobatch_on_one_gpu_or_a_fixed_batch_is_accepted(raw: dict[str, str], instance_type: str) -> None:
    check_autobatch(parse_hyperparameters(raw), instance_type)


@pytest.mark.parametrize("opset", ["11", "12"])
def test_int8_with_an_opset_below_13_is_refused_at_job_start(opset: str) -> None:
    """opset 11/12 give an invalid int8 graph (no per-channel QuantizeLinear axis): refused before any training."""
    with pytest.raises(
        HyperparameterError, match=rf"hp.json: int8=true with onnx_opset={opset}: .*opset >= 13"
    ):
        parse_hyperparameters({"onnx_opset": opset}, source="hp.json")
    assert parse_hyperparameters({"onnx_opset": opset, "int8": "false"}).onnx_opset == int(opset)
    assert parse_hyperparameters({"onnx_opset": "13"}).int8
