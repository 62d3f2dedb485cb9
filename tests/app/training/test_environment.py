"""The training job's environment variables, read once into a typed TrainingEnvironment."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.training.environment import (
    DEFAULT_WEIGHTS_DIR,
    INSTANCE_TYPE_ENV,
    JOB_NAME_ENV,
    OPT_ML_ENV,
    WEIGHTS_DIR_ENV,
    TrainingEnvironment,
)


def test_environment_is_read_once_into_typed_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JOB_NAME_ENV, "dev-yolo-abc")
    monkeypatch.setenv(INSTANCE_TYPE_ENV, "ml.g5.xlarge")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, "/weights")
    monkeypatch.delenv(OPT_ML_ENV, raising=False)
    assert TrainingEnvironment.read() == TrainingEnvironment(
        opt_ml=None, job_name="dev-yolo-abc", instance_type="ml.g5.xlarge", weights_dir=Path("/weights")
    )


def test_empty_variables_count_as_unset() -> None:
    empty = {OPT_ML_ENV: "", JOB_NAME_ENV: "", INSTANCE_TYPE_ENV: "", WEIGHTS_DIR_ENV: ""}
    assert TrainingEnvironment.read(empty) == TrainingEnvironment(weights_dir=DEFAULT_WEIGHTS_DIR)
