"""Serving settings: parsed once from SERVING_* (and SageMaker's port variable); the CLI overrides them; invalid
values stop ``serve`` with the variable named. Runtime: < 1 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.serving.__main__ import main
from app.serving.settings import ServingSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SAGEMAKER_BIND_TO_PORT",
        "SERVING_PORT",
        "SERVING_CONF",
        "SERVING_WORKERS",
        "SERVING_DEADLINE_S",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_sagemaker_ones() -> None:
    settings = ServingSettings()
    assert (settings.port, settings.model_dir, settings.max_body_bytes) == (
        8080,
        Path("/opt/ml/model"),
        6 * 2**20,
    )
    assert settings.deadline_s < 60 and settings.graceful_timeout_s < 25


def test_sagemaker_bind_to_port_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9091")
    assert ServingSettings().port == 9091


def test_cli_port_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9091")
    assert ServingSettings(port=9092).port == 9092


def test_default_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVING_CONF", "0.4")
    assert ServingSettings().default_options.conf == 0.4


def test_invalid_setting_stops_serve_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SERVING_DEADLINE_S", "90")
    assert main(["serve", "--model-dir", "/nonexistent"]) == 2
    assert "deadline_s" in capsys.readouterr().err


def test_default_threading_runs_one_inference_at_a_time_on_all_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """One ONNX Runtime run already uses every core: two at once on the same cores only thrash."""
    monkeypatch.setattr("app.serving.settings.cpu_count", lambda: 8)
    settings = ServingSettings()
    assert (settings.ort_threads, settings.run_slots) == (8, 1)


def test_fewer_intra_op_threads_allow_parallel_runs_up_to_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.serving.settings.cpu_count", lambda: 8)
    assert ServingSettings(intra_op_threads=2).run_slots == 4
    assert ServingSettings(workers=2, intra_op_threads=2).run_slots == 2
    assert ServingSettings(parallel_runs=3).run_slots == 3  # an explicit choice wins
