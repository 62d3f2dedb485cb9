"""Runner Lambda against moto (in-process): one job per request, with the parameters the stage config asks for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.contracts.hyperparameters import BAKED_CHECKPOINT
from app.contracts.metrics import METRIC_DEFINITIONS
from app.launcher import runner
from app.launcher.settings import RunnerSettings, SettingsError, load
from tests.app.launcher.call_recorder import CallRecorder
from tests.app.launcher.events import s3_event
from tests.app.launcher.stage_settings import (
    ARTIFACTS,
    DATASET_URI,
    DATASETS,
    IMAGE,
    KMS_ARN,
    PREFIX,
    ROLE_ARN,
    RUNNER_ENV,
)


def _sent_job(runner_settings: RunnerSettings, sagemaker: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The CreateTrainingJob parameters the runner sent for ``event`` (it must have started a job)."""
    calls = CallRecorder(sagemaker)
    assert runner.start(event, settings=runner_settings, sagemaker=sagemaker)["status"] == "started"
    [sent] = calls.of("CreateTrainingJob")
    return sent


def test_valid_request_starts_one_job_with_the_stage_settings(
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
    assert sent["HyperParameters"] == {"epochs": "3", "imgsz": "640", "model": BAKED_CHECKPOINT}
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
    assert tags["stage"] == "dev"  # the stage's own tag, as on every other resource of the stage
    assert tags["platform:stage"] == "Dev"
    assert "EnableInterContainerTrafficEncryption" not in sent
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


@pytest.mark.parametrize(
    ("key", "folder"),
    [
        ("datasets/v-3f2a1b9c/dataset.json", DATASET_URI),
        # EventBridge URL-encodes the key: the job trains on the decoded, real prefix
        ("datasets/date%3D2024-05-01/dataset.json", f"s3://{DATASETS}/datasets/date=2024-05-01/"),
    ],
)
def test_dataset_json_event_starts_a_job_on_its_folder(
    runner_settings: RunnerSettings, sagemaker: Any, key: str, folder: str
) -> None:
    sent = _sent_job(runner_settings, sagemaker, s3_event(key))
    assert sent["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == folder
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


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        pytest.param(
            {"dataset_uri": "s3://someone-elses-bucket/ds/"},
            "dataset_uri",
            DATASETS,
            id="dataset-in-another-bucket",
        ),
        # the training role reads only some prefixes of the artifacts bucket
        pytest.param(
            {"pretrained_uri": f"s3://{ARTIFACTS}/data-capture/x/model.pt"},
            "pretrained_uri",
            "models/",
            id="pretrained-in-data-capture",
        ),
        pytest.param(
            {"pretrained_uri": f"s3://{ARTIFACTS}/elsewhere/best.pt"},
            "pretrained_uri",
            "models/",
            id="pretrained-outside-readable-prefixes",
        ),
        pytest.param({"instance_count": 2}, "instance_count", "ml.p4d", id="more-than-one-instance"),
        pytest.param(
            {"hyperparameters": {"model": "yolo26n.yaml"}},
            "hyperparameters",
            "YOLO26",
            id="end-to-end-family",
        ),
        pytest.param(
            {"instance_type": "ml.g5.12xlarge", "hyperparameters": {"batch": -1}},
            "hyperparameters",
            "ml.g5.12xlarge, which has 4 GPUs",
            id="autobatch-on-a-multi-gpu-instance",
        ),
    ],
)
def test_request_the_stage_cannot_run_is_rejected_before_any_aws_call(
    runner_settings: RunnerSettings, sagemaker: Any, overrides: dict[str, Any], field: str, says: str
) -> None:
    calls = CallRecorder(sagemaker)
    event = {"dataset_uri": DATASET_URI, **overrides}
    result = runner.start(event, settings=runner_settings, sagemaker=sagemaker)
    assert (result["status"], result["retryable"]) == ("rejected", False)
    assert result["error"]["field"] == field
    assert says in result["error"]["message"]
    assert calls.calls == []


def test_rejected_dataset_event_is_sent_to_the_notify_topic(
    runner_settings: RunnerSettings, sagemaker: Any, sns_inbox: tuple[Any, str, Any, str]
) -> None:
    sns, topic, sqs, queue = sns_inbox
    settings = runner_settings.model_copy(update={"notify_topic_arn": topic})
    event = s3_event("datasets/v-1/dataset.json", bucket="not-the-datasets-bucket")
    result = runner.start(event, settings=settings, sagemaker=sagemaker, sns=sns)
    [message] = sqs.receive_message(QueueUrl=queue).get("Messages", [])
    envelope = json.loads(message["Body"])
    assert result["status"] == "rejected"
    assert envelope["Subject"] == "[Dev] training not started for a new dataset"
    assert json.loads(envelope["Message"]) == result


@pytest.mark.usefixtures("cold_start")
def test_handler_reads_its_settings_from_the_lambda_environment(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    result = runner.handler({"dataset_uri": DATASET_URI}, None)
    assert result["status"] == "started"
    assert sagemaker.describe_training_job(TrainingJobName=result["job_name"])["RoleArn"] == ROLE_ARN


@pytest.mark.parametrize(
    ("instance_type", "has_volume_key"), [("ml.g5.xlarge", False), ("ml.p3.2xlarge", True)]
)
def test_volume_kms_key_only_on_instance_types_with_ebs_storage(
    runner_settings: RunnerSettings, sagemaker: Any, instance_type: str, has_volume_key: bool
) -> None:
    sent = _sent_job(runner_settings, sagemaker, {"dataset_uri": DATASET_URI, "instance_type": instance_type})
    assert ("VolumeKmsKeyId" in sent["ResourceConfig"]) is has_volume_key


def test_vpc_settings_put_the_job_in_the_stage_subnets(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    settings = runner_settings.model_copy(
        update={"subnet_ids": ("subnet-1",), "security_group_ids": ("sg-1",)}
    )
    sent = _sent_job(settings, sagemaker, {"dataset_uri": DATASET_URI})
    assert sent["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}


def test_on_demand_override_drops_max_wait(runner_settings: RunnerSettings, sagemaker: Any) -> None:
    sent = _sent_job(runner_settings, sagemaker, {"dataset_uri": DATASET_URI, "use_spot": False})
    assert sent["EnableManagedSpotTraining"] is False
    assert sent["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400}


def test_new_dataset_json_in_the_same_prefix_starts_a_new_job(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    key = "datasets/v-3f2a1b9c/dataset.json"
    first = runner.start(s3_event(key, etag="1" * 32), settings=runner_settings, sagemaker=sagemaker)
    relanded = runner.start(s3_event(key, etag="2" * 32), settings=runner_settings, sagemaker=sagemaker)
    assert (first["status"], relanded["status"]) == ("started", "started")
    assert relanded["job_name"] != first["job_name"]


def test_new_version_of_a_versioned_dataset_json_starts_a_new_job(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    key = "datasets/v-3f2a1b9c/dataset.json"
    first = runner.start(s3_event(key, version_id="v1"), settings=runner_settings, sagemaker=sagemaker)
    second = runner.start(s3_event(key, version_id="v2"), settings=runner_settings, sagemaker=sagemaker)
    assert second["status"] == "started"
    assert second["job_name"] != first["job_name"]


def test_event_key_with_an_encoded_space_is_rejected_not_trained_on_a_wrong_prefix(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    result = runner.start(
        s3_event("datasets/my+set/dataset.json"), settings=runner_settings, sagemaker=sagemaker
    )
    assert result["status"] == "rejected"
    assert result["error"]["field"] == "dataset_uri"
    assert "datasets/my set/" in result["error"]["message"]
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


def test_previous_jobs_model_tar_gz_is_accepted_as_pretrained(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    pretrained = f"s3://{ARTIFACTS}/training-output/yolo-dev-d-0123456789ab/output/model.tar.gz"
    sent = _sent_job(runner_settings, sagemaker, {"dataset_uri": DATASET_URI, "pretrained_uri": pretrained})
    [channel] = [c for c in sent["InputDataConfig"] if c["ChannelName"] == "pretrained"]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == pretrained


def test_stage_settings_with_more_than_one_instance_fail_the_cold_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {**RUNNER_ENV, "INSTANCE_COUNT": "2"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=r"INSTANCE_COUNT: .*one instance only"):
        load(RunnerSettings)


def test_operator_job_fine_tunes_the_baked_checkpoint_by_default(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    sent = _sent_job(runner_settings, sagemaker, {"dataset_uri": DATASET_URI})
    assert sent["HyperParameters"]["model"] == BAKED_CHECKPOINT
    assert [c["ChannelName"] for c in sent["InputDataConfig"]] == ["dataset"]


def test_dataset_event_job_fine_tunes_the_baked_checkpoint_by_default(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    sent = _sent_job(runner_settings, sagemaker, s3_event("datasets/v-3f2a1b9c/dataset.json"))
    assert sent["HyperParameters"]["model"] == BAKED_CHECKPOINT


def test_a_named_yaml_trains_from_scratch_only_when_asked(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    event = {"dataset_uri": DATASET_URI, "hyperparameters": {"model": "yolov8s.yaml"}}
    assert _sent_job(runner_settings, sagemaker, event)["HyperParameters"]["model"] == "yolov8s.yaml"


def test_a_pretrained_uri_is_the_start_and_no_default_model_is_added(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    uri = f"s3://{DATASETS}/checkpoints/best.pt"
    sent = _sent_job(runner_settings, sagemaker, {"dataset_uri": DATASET_URI, "pretrained_uri": uri})
    assert "model" not in sent["HyperParameters"]
    assert sent["InputDataConfig"][1]["ChannelName"] == "pretrained"


def test_autobatch_on_one_chosen_gpu_of_a_multi_gpu_instance_starts(
    runner_settings: RunnerSettings, sagemaker: Any
) -> None:
    event = {
        "dataset_uri": DATASET_URI,
        "instance_type": "ml.g5.12xlarge",
        "hyperparameters": {"batch": -1, "device": "0"},
    }
    assert _sent_job(runner_settings, sagemaker, event)["HyperParameters"]["batch"] == "-1"
