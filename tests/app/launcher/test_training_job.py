"""Job names: derived from the request, valid for SageMaker, stable across dict order, at most 63 characters."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.launcher.settings import RunnerSettings
from app.launcher.training_job import job_name, resolve
from app.launcher.trigger import parse_event
from tests.app.launcher.stage_settings import DATASETS, PREFIX

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def name_of(settings: RunnerSettings, event: dict[str, object]) -> str:
    request, trigger = parse_event(event)
    return job_name(resolve(request, trigger, settings), settings.job_name_prefix)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    folder=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/"),
        min_size=1,
        max_size=120,
    )
)
def test_job_name_is_a_valid_sagemaker_name_for_any_dataset_folder(
    runner_settings: RunnerSettings, folder: str
) -> None:
    name = name_of(runner_settings, {"dataset_uri": f"s3://{DATASETS}/datasets/{folder}/"})
    assert SAGEMAKER_NAME.match(name), name
    assert name.startswith(PREFIX)


def test_hyperparameter_order_and_spelling_do_not_change_the_name(runner_settings: RunnerSettings) -> None:
    a = name_of(
        runner_settings,
        {
            "dataset_uri": f"s3://{DATASETS}/d/",
            "hyperparameters": {"epochs": 3, "lr0": 0.1, "optimizer": "SGD"},
        },
    )
    b = name_of(
        runner_settings,
        {
            "dataset_uri": f"s3://{DATASETS}/d/dataset.json",
            "hyperparameters": {"optimizer": "SGD", "lr0": "0.1", "epochs": "3"},
        },
    )
    assert a == b


def test_a_different_hyperparameter_gives_a_different_name(runner_settings: RunnerSettings) -> None:
    a = name_of(runner_settings, {"dataset_uri": f"s3://{DATASETS}/d/", "hyperparameters": {"epochs": 3}})
    b = name_of(runner_settings, {"dataset_uri": f"s3://{DATASETS}/d/", "hyperparameters": {"epochs": 4}})
    assert a != b
