"""Runner Lambda against moto (in-process): one job per request, with the request the stage config asks for."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from app.contracts.metrics import METRIC_DEFINITIONS
from app.launcher import runner
from app.launcher.settings import RunnerSettings
from tests.app.launcher.conftest import (
    ARTIFACTS,
    DATASET_URI,
    DATASETS,
    IMAGE,
    KMS_ARN,
    PREFIX,
    REGION,
    ROLE_ARN,
    CallRecorder,
)


def s3_event(key: str, bucket: str = DATASETS) -> dict[str, Any]:
    """An EventBridge S3 'Object Created' event as S3 sends it (trimmed to the fields we read + a few)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1234, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "request-id": "N4N7GDK58NMKJ12R",
            "reason": "PutObject",
        },
    }


def test_valid_request_starts_one_job_with_the_stage_request(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    calls = CallRecorder(sagemaker)
    result = runner.start(
        {"dataset_uri": DATASET_URI, "hyperparameters": {"epochs": 3}},
        settings=runner_settings,
        sagemaker=sagemaker,
    )
    assert result["status"] == "started"
    [sent] = calls.of("CreateTrainingJob")
    assert sent["TrainingJobName"] == result["job_name"]
    assert sent["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert sent["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert sent["RoleArn"] == ROLE_ARN
    assert sent["HyperParameters"] == {"epochs": "3", "imgsz": "640"}
    assert sent["InputDataConfig"][0]["ChannelName"] == "dataset"
    assert sent["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == DATASET_URI
    assert sent["EnableManagedSpotTraining"] is True
    assert sent["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400, "MaxWaitTimeInSeconds": 28800}
    assert sent["CheckpointConfig"] == {
        "S3Uri": f"s3://{ARTIFACTS}/checkpoints/{result['job_name']}/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert sent["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{ARTIFACTS}/training-output/",
        "KmsKeyId": KMS_ARN,
    }
    assert "VolumeKmsKeyId" not in sent["ResourceConfig"]  # ml.g5 storage is local NVMe
    assert sent["EnableNetworkIsolation"] is True
    tags = {t["Key"]: t["Value"] for t in sent["Tags"]}
    assert tags["project"] == "yolo-detector"
    assert tags["stage"] == "Dev"
    assert tags["launcher:trigger"] == "operator"
    jobs = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == [result["job_name"]]
    assert result["job_name"].startswith(PREFIX)
    assert result["console_url"].endswith(f"#/jobs/{result['job_name']}")


def test_same_request_twice_starts_one_job(runner_settings: RunnerSettings, sagemaker: Any) -> None:
    calls = CallRecorder(sagemaker)
    request = {"dataset_uri": DATASET_URI, "hyperparameters": {"epochs": "3"}}
    first = runner.start(request, settings=runner_settings, sagemaker=sagemaker)
    second = runner.start(dict(request), settings=runner_settings, sagemaker=sagemaker)
    assert (first["status"], second["status"]) == ("started", "already_started")
    assert second["job_name"] == first["job_name"]
    assert second["job_arn"] == first["job_arn"]
    assert len(calls.of("CreateTrainingJob")) == 1
    assert len(sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 1


def test_new_run_label_starts_a_second_job(runner_settings: RunnerSettings, sagemaker: Any) -> None:
    first = runner.start({"dataset_uri": DATASET_URI}, settings=runner_settings, sagemaker=sagemaker)
    again = runner.start(
        {"dataset_uri": DATASET_URI, "run_label": "retry-2"}, settings=runner_settings, sagemaker=sagemaker
    )
    assert again["status"] == "started"
    assert again["job_name"] != first["job_name"]


def test_dataset_json_event_starts_a_job_on_its_folder(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    calls = CallRecorder(sagemaker)
    result = runner.start(
        s3_event("datasets/v-3f2a1b9c/dataset.json"), settings=runner_settings, sagemaker=sagemaker
    )
    assert result["status"] == "started"
    [sent] = calls.of("CreateTrainingJob")
    assert sent["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == DATASET_URI
    assert {"Key": "launcher:trigger", "Value": "dataset-event"} in sent["Tags"]


def test_duplicate_dataset_event_reports_the_existing_job(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    event = runner.start(
        s3_event("datasets/v-3f2a1b9c/dataset.json"), settings=runner_settings, sagemaker=sagemaker
    )
    again = runner.start(
        s3_event("datasets/v-3f2a1b9c/dataset.json"), settings=runner_settings, sagemaker=sagemaker
    )
    assert again == {**event, "status": "already_started", "job_status": "Completed"}


def test_dataset_in_another_bucket_is_rejected_naming_the_field(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    calls = CallRecorder(sagemaker)
    result = runner.start(
        {"dataset_uri": "s3://someone-elses-bucket/ds/"}, settings=runner_settings, sagemaker=sagemaker
    )
    assert result["status"] == "rejected"
    assert result["retryable"] is False
    assert result["error"]["field"] == "dataset_uri"
    assert DATASETS in result["error"]["message"]
    assert calls.calls == []


def test_rejected_dataset_event_is_sent_to_the_notify_topic(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="notify")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    settings = runner_settings.model_copy(update={"notify_topic_arn": topic})
    event = s3_event("datasets/v-1/dataset.json", bucket="not-the-datasets-bucket")
    result = runner.start(event, settings=settings, sagemaker=sagemaker, sns=sns)
    [message] = sqs.receive_message(QueueUrl=queue).get("Messages", [])
    assert result["status"] == "rejected"
    assert "not-the-datasets-bucket" in message["Body"]


def test_handler_reads_its_settings_from_the_lambda_environment(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    runner._deps.cache_clear()
    try:
        result = runner.handler({"dataset_uri": DATASET_URI}, None)
    finally:
        runner._deps.cache_clear()
    assert result["status"] == "started"
    assert sagemaker.describe_training_job(TrainingJobName=result["job_name"])["RoleArn"] == ROLE_ARN


@pytest.mark.parametrize(
    ("instance_type", "has_volume_key"), [("ml.g5.xlarge", False), ("ml.p3.2xlarge", True)]
)
def test_volume_kms_key_only_on_instance_types_with_ebs_storage(
    runner_settings: RunnerSettings, sagemaker: Any, instance_type: str, has_volume_key: bool
) -> None:
    calls = CallRecorder(sagemaker)
    runner.start(
        {"dataset_uri": DATASET_URI, "instance_type": instance_type},
        settings=runner_settings,
        sagemaker=sagemaker,
    )
    [sent] = calls.of("CreateTrainingJob")
    assert ("VolumeKmsKeyId" in sent["ResourceConfig"]) is has_volume_key


def test_vpc_settings_put_the_job_in_the_stage_subnets(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    settings = runner_settings.model_copy(
        update={"subnet_ids": ("subnet-1",), "security_group_ids": ("sg-1",)}
    )
    calls = CallRecorder(sagemaker)
    runner.start({"dataset_uri": DATASET_URI}, settings=settings, sagemaker=sagemaker)
    [sent] = calls.of("CreateTrainingJob")
    assert sent["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}


def test_on_demand_override_drops_max_wait(runner_settings: RunnerSettings, sagemaker: Any) -> None:
    calls = CallRecorder(sagemaker)
    runner.start(
        {"dataset_uri": DATASET_URI, "use_spot": False}, settings=runner_settings, sagemaker=sagemaker
    )
    [sent] = calls.of("CreateTrainingJob")
    assert sent["EnableManagedSpotTraining"] is False
    assert sent["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400}
