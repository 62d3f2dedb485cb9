"""Launcher test fixtures: stage settings like CDK writes them, moto (in-process) AWS, an SNS inbox to read, and a
cold start for handler tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from app.launcher import aws as launcher_aws
from app.launcher.settings import RegistrarSettings, RunnerSettings
from tests.app.launcher.stage_settings import CHAMPION_ENV, PREFIX, REGION, RUNNER_ENV, SERVE_IMAGE


@pytest.fixture
def runner_settings(monkeypatch: pytest.MonkeyPatch) -> RunnerSettings:
    for key, value in RUNNER_ENV.items():
        monkeypatch.setenv(key, value)
    return RunnerSettings()


@pytest.fixture
def registrar_settings() -> RegistrarSettings:
    return RegistrarSettings.model_validate(
        {
            "stage": "Dev",
            "job_name_prefix": PREFIX,
            "notify_topic_arn": None,
            "quality_bar_map50_95": 0.5,
            "serve_image_uri": SERVE_IMAGE,
            **{name.lower(): value for name, value in CHAMPION_ENV.items()},
        }
    )


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def cold_start() -> Iterator[None]:
    """A handler test starts cold: its settings and clients are built from this test's environment."""
    launcher_aws._cold_start.cache_clear()
    yield
    launcher_aws._cold_start.cache_clear()


@pytest.fixture
def sagemaker(aws: None) -> Any:
    return boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def s3(aws: None) -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def sns_inbox(aws: None) -> tuple[Any, str, Any, str]:
    """(sns client, topic ARN, sqs client, queue URL): an SNS topic with an SQS queue subscribed, to read what was
    published (each message body is SNS's JSON envelope with ``Subject`` and ``Message``)."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="notify")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return sns, topic, sqs, queue
