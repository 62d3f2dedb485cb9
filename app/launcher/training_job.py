"""A validated TrainingRequest + the stage's settings -> the job's name and its exact CreateTrainingJob parameters.

The name is derived from the resolved job (dataset, effective hyperparameters, instance config, pretrained
checkpoint, run label; for a dataset.json event also the object's etag/version), so a retried or duplicated event
maps to the same job instead of a second one, while a new dataset.json in the same prefix starts a new job. SageMaker
never reuses a training job name: to train again on the same inputs, give a new ``run_label``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from app.contracts import instance_types
from app.contracts.channels import (
    CHAMPION_CHANNEL,
    CHECKPOINT_LOCAL_PATH,
    DATASET_CHANNEL,
    PRETRAINED_CHANNEL,
)
from app.contracts.hyperparameters import (
    BAKED_CHECKPOINT,
    HyperparameterError,
    check_autobatch,
    check_int8_bars,
    parse_hyperparameters,
    to_sagemaker,
)
from app.contracts.metrics import METRIC_DEFINITIONS
from app.launcher.champion import Champion, champion_hyperparameters
from app.launcher.readable import check_training_readable
from app.launcher.settings import RunnerSettings
from app.launcher.trigger import RequestError, TrainingRequest, Trigger

MAX_JOB_NAME = 63
_DIGEST_CHARS = 12
_TAG_UNSAFE = re.compile(r"[^\w .:/=+@-]")  # characters a SageMaker tag value may not hold


@dataclass(frozen=True)
class ResolvedJob:
    """What will run: the request merged with the stage settings."""

    request: TrainingRequest
    trigger: Trigger
    hyperparameters: dict[str, str]
    instance_type: str
    instance_count: int
    volume_size_gb: int
    use_spot: bool

    def identity(self) -> dict[str, Any]:
        """Everything that makes two requests 'the same request'."""
        identity: dict[str, Any] = {
            "dataset_uri": self.request.dataset_uri,
            "hyperparameters": self.hyperparameters,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "volume_size_gb": self.volume_size_gb,
            "use_spot": self.use_spot,
            "pretrained_uri": self.request.pretrained_uri,
            "run_label": self.request.run_label,
        }
        # Only events carry it (operator identities, and so their job names, stay as they were).
        if self.request.dataset_version is not None:
            identity["dataset_version"] = self.request.dataset_version
        # Named only when the request chose (as is, not resolved): a retried event is the same job even after a
        # newer version was approved in between.
        if self.request.champion is not None:
            identity["champion"] = self.request.champion
        return identity


def resolve(request: TrainingRequest, trigger: Trigger, settings: RunnerSettings) -> ResolvedJob:
    """Merge overrides into the stage defaults and check what only the settings can tell (the buckets the training
    role reads, autobatch on the chosen instance's GPUs)."""
    if request.dataset_bucket != settings.datasets_bucket:
        raise RequestError(
            "dataset_uri",
            f"bucket '{request.dataset_bucket}' is not this stage's datasets bucket '{settings.datasets_bucket}' "
            "(the training role can read only that one); upload the dataset there",
        )
    if request.pretrained_uri:
        _check_pretrained(request.pretrained_uri, settings)
    merged = {**settings.default_hyperparameters, **to_sagemaker(request.hyperparameters)}
    if not request.pretrained_uri and "model" not in merged:
        # Transfer learning by default: fine-tune the checkpoint baked into the training image. Said explicitly, so
        # the job's HyperParameters show its start; a yaml (from scratch) only when the request or stage names one.
        merged["model"] = BAKED_CHECKPOINT
    instance_type = request.instance_type or settings.instance_type
    try:
        typed = parse_hyperparameters(merged, source="hyperparameters")
        check_autobatch(typed, instance_type)  # needs the instance's GPU count: refused here, not on the GPU
        check_int8_bars(
            typed, max_map_drop=settings.int8_map_drop_cap, max_class_drop=settings.int8_class_drop_cap
        )
    except HyperparameterError as exc:
        raise RequestError("hyperparameters", str(exc)) from None
    explicit = typed.model_dump(include=set(merged))
    return ResolvedJob(
        request=request,
        trigger=trigger,
        hyperparameters=dict(sorted(to_sagemaker(explicit).items())),
        instance_type=instance_type,
        instance_count=request.instance_count or settings.instance_count,
        volume_size_gb=request.volume_size_gb or settings.volume_size_gb,
        use_spot=settings.use_spot if request.use_spot is None else request.use_spot,
    )


def _check_pretrained(uri: str, settings: RunnerSettings) -> None:
    check_training_readable(uri, settings, field="pretrained_uri", what="a checkpoint")


def _slug(dataset_uri: str) -> str:
    last = dataset_uri.rstrip("/").rsplit("/", 1)[-1].lower()
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", last)).strip("-") or "dataset"


def job_name(job: ResolvedJob, prefix: str) -> str:
    """``<prefix><dataset folder>-<sha256 of the job's identity, 12 hex>``, at most 63 characters."""
    canonical = json.dumps(job.identity(), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:_DIGEST_CHARS]
    room = MAX_JOB_NAME - len(prefix) - 1 - _DIGEST_CHARS
    slug = _slug(job.request.dataset_uri)[: max(room, 0)].strip("-")
    return f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def create_training_job_params(
    job: ResolvedJob, settings: RunnerSettings, champion: Champion | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``sagemaker.create_training_job`` for ``job``, compared with ``champion``."""
    name = job_name(job, settings.job_name_prefix)
    channels = [_channel(DATASET_CHANNEL, job.request.dataset_uri)]
    if job.request.pretrained_uri:
        channels.append(_channel(PRETRAINED_CHANNEL, job.request.pretrained_uri))
    hyperparameters = dict(job.hyperparameters)
    if champion is not None:
        channels.append(_channel(CHAMPION_CHANNEL, champion.model_data))
        hyperparameters = {**hyperparameters, **champion_hyperparameters(champion, settings, hyperparameters)}
        hyperparameters = dict(sorted(hyperparameters.items()))
    resources: dict[str, Any] = {
        "InstanceType": job.instance_type,
        "InstanceCount": job.instance_count,
        "VolumeSizeInGB": job.volume_size_gb,
    }
    # Local NVMe instance storage is encrypted by the instance; SageMaker rejects a volume key there.
    if instance_types.supports_volume_kms_key(job.instance_type):
        resources["VolumeKmsKeyId"] = settings.kms_key_arn
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    if job.use_spot:
        stopping["MaxWaitTimeInSeconds"] = max(settings.max_wait_seconds, settings.max_runtime_seconds)
    tags = {
        **settings.tags,  # the stage's tags unchanged (its "stage" tag matches every other resource's)
        "platform:stage": settings.stage,
        "launcher:trigger": job.trigger,
        "launcher:dataset": _TAG_UNSAFE.sub("_", job.request.dataset_uri)[:256],
    }
    if job.request.run_label:
        tags["launcher:run-label"] = job.request.run_label
    params: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": settings.training_image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(d) for d in METRIC_DEFINITIONS],
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": settings.training_role_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": settings.output_s3_uri, "KmsKeyId": settings.kms_key_arn},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": job.use_spot,
        # Spot interruptions resume from here; on-demand jobs keep checkpoints too (cheap, helps retries).
        "CheckpointConfig": {
            "S3Uri": f"{settings.checkpoint_s3_uri}{name}/",
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        },
        "EnableNetworkIsolation": settings.network_isolation,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }
    if settings.subnet_ids:
        params["VpcConfig"] = {
            "Subnets": list(settings.subnet_ids),
            "SecurityGroupIds": list(settings.security_group_ids),
        }
    return params
