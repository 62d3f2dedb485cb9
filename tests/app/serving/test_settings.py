"""Serving settings: parsed once from SERVING_* (and SageMaker's port variable); the CLI overrides them; invalid
values stop ``serve`` with the variable named. Runtime: < 1 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.contracts import serving_environment
from app.serving.__main__ import main
from app.serving.settings import ServingSettings, default_layout


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SAGEMAKER_BIND_TO_PORT",
        "SERVING_PORT",
        "SERVING_CONF",
        "SERVING_WORKERS",
        "SERVING_DEADLINE_S",
        "SERVING_THREADS",
        "SERVING_INTRA_OP_THREADS",
        "SERVING_SPINNING",
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


@pytest.mark.parametrize(
    ("vcpus", "workers", "runs"),
    [(1, 1, 1), (2, 1, 2), (4, 1, 4), (8, 2, 4), (16, 4, 4), (48, 12, 4), (192, 32, 6)],
)
def test_cpu_layout_runs_a_single_thread_session_per_vcpu_in_few_processes(
    monkeypatch: pytest.MonkeyPatch, vcpus: int, workers: int, runs: int
) -> None:
    """Issue 15: N single-thread runs are the machine's limit (2 vCPUs: ~12.2 img/s vs ~11.4 for one 2-thread
    run). Issue 25: they run side by side in one process of up to MAX_RUNS_PER_WORKER vCPUs, so a process can use
    every core it is given: with one process per vCPU, two clients whose connections the same process accepted ran
    in turn while the other vCPU idled. Never more run slots than one per vCPU plus one per process."""
    layout = default_layout(vcpus, "cpu")
    assert (layout.workers, layout.intra_op_threads, layout.threads, layout.spinning) == (
        workers,
        1,
        2 * runs,
        False,
    )
    monkeypatch.setattr("app.serving.settings.cpu_count", lambda: vcpus)
    settings = ServingSettings(device="cpu")
    assert (settings.workers, settings.ort_threads, settings.run_slots) == (workers, 1, runs)
    assert vcpus <= settings.workers * settings.run_slots < vcpus + settings.workers


@pytest.mark.parametrize("vcpus", [1, 2, 4, 8])
def test_gpu_layout_is_one_process(vcpus: int) -> None:
    layout = default_layout(vcpus, "cuda")
    assert layout.workers == 1 and 2 <= layout.threads <= 4 and 1 <= layout.intra_op_threads <= vcpus


def test_the_default_settings_follow_the_layout_and_one_run_per_vcpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.serving.settings.cpu_count", lambda: 2)  # ml.c6i.large, Dev's endpoint
    settings = ServingSettings(device="cpu")
    assert (settings.workers, settings.threads, settings.ort_threads, settings.run_slots) == (1, 4, 1, 2)
    assert settings.spinning is False


def test_explicit_settings_override_the_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.serving.settings.cpu_count", lambda: 8)
    monkeypatch.setenv("SERVING_WORKERS", "1")
    one = ServingSettings(device="cpu")  # one process: it splits every core for one run at a time (issue 13)
    assert (one.workers, one.ort_threads, one.run_slots) == (1, 8, 1)
    monkeypatch.setenv("SERVING_SPINNING", "true")
    monkeypatch.setenv("SERVING_THREADS", "3")
    assert ServingSettings(device="cpu", intra_op_threads=4).ort_threads == 4
    assert ServingSettings(device="cpu").spinning is True and ServingSettings(device="cpu").threads == 3


def test_fewer_intra_op_threads_allow_parallel_runs_up_to_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.serving.settings.cpu_count", lambda: 8)
    monkeypatch.setenv("SERVING_WORKERS", "1")
    assert ServingSettings(intra_op_threads=2).run_slots == 4
    assert ServingSettings(workers=2, intra_op_threads=2).run_slots == 2
    assert ServingSettings(parallel_runs=3).run_slots == 3  # an explicit choice wins


def test_every_setting_is_in_exactly_one_group_of_the_environment_contract() -> None:
    """Infra writes and checks names from app/contracts/serving_environment.py; the server reads ServingSettings.
    A new, renamed or removed setting must be placed (tunable, fixed by SageMaker, or set by infra) before it ships."""
    read = {serving_environment.PREFIX + name.upper() for name in ServingSettings.model_fields}
    groups = [serving_environment.TUNABLE, serving_environment.FIXED, serving_environment.SET_BY_INFRA]
    assert sum(len(group) for group in groups) == len(read)
    assert set().union(*groups) == read
