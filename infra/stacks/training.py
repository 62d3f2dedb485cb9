"""Training stack of a stage, composed of constructs: the SageMaker training role, the dataprep image + Processing
role (``scripts/dataprep_job.py``), the notify topic and dead-letter queue, the launchers (runner and registrar
Lambdas) and the training events (EventBridge rules that drive them, failed-job and dead-letter alarms).

Flow: a ``dataset.json`` lands in the datasets bucket (or an operator invokes the runner) -> runner starts one
training job named ``<stage prefix><dataset>-<hash>`` -> SageMaker's "Training Job State Change" event -> registrar
registers a model package version in the stateful stack's model package group (Completed) or publishes the failure
(Failed/Stopped) to the notify topic. Operator scripts (``scripts/training.py``) find everything through this
stack's outputs.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs import training_names as names
from infra.constructs.dataprep_job import DataprepJob
from infra.constructs.images import ContainerImage, train_build_args
from infra.constructs.monitoring import AlarmTopic
from infra.constructs.training_events import TrainingEvents
from infra.constructs.training_launchers import TrainingLaunchers
from infra.constructs.training_role import TrainingRole
from infra.logical_ids import keep_logical_ids
from infra.nag import acknowledge
from infra.stack_outputs import TrainingOutputs
from infra.stacks.stateful import StatefulStack
from infra.stage_release import StageRelease


class TrainingStack(cdk.Stack):
    """Public attributes: ``training_role``, ``runner``, ``registrar``, ``notify_topic``, ``events``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data: StatefulStack,
        release: StageRelease | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", f"{config.name}: training runner, events, model registration")
        super().__init__(
            scope, construct_id, termination_protection=config.protect_stateless_stacks, **kwargs
        )
        settings = config.training
        prefix = names.job_name_prefix(config.name)  # every job's name starts with it; IAM scopes jobs to it
        train_image = ContainerImage(
            self,
            "TrainImage",
            name="train",
            pinned_uri=release.train if release else config.images.train,
            build_args=train_build_args(),
        )

        self.training_role = TrainingRole(
            self,
            "TrainingRole",
            stage=config.name,
            datasets_bucket=data.datasets_bucket,
            artifacts_bucket=data.artifacts_bucket,
            key=data.key,
            image=train_image,
            vpc=bool(settings.subnet_ids),
        ).role
        self.dataprep = DataprepJob(
            self,
            "Dataprep",
            stage=config.name,
            pinned_uri=release.dataprep if release else config.images.dataprep,
            datasets_bucket=data.datasets_bucket,
            key=data.key,
            label_sources=config.label_sources,
        )

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            # Failed launcher events are evidence: kept with the stage's data where the stage keeps data.
            removal_policy=cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.dead_letters,
            "Serverless-SQSRedrivePolicy",
            "This queue is the final stop for failed launcher events (inspected by an operator, alarmed on); "
            "redriving it to another queue would only move the problem.",
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the launcher Lambdas, the EventBridge targets and the "
            "email subscriptions; a dead-letter queue of a dead-letter queue adds nothing.",
        )
        notify = AlarmTopic(
            self,
            "Notify",
            display_name=f"{config.name} training",
            purpose="the training notify topic",
            emails=config.alarm_emails,
            retain=config.retain_data,
            dead_letters=self.dead_letters,
        )
        # The topic keeps the logical ID it had before it had a construct of its own (a replaced topic would have
        # a new ARN and every e-mail subscriber would have to confirm again).
        keep_logical_ids(notify.topic, old_path=["NotifyTopic"])
        self.notify_topic = notify.topic

        # "Default" is CDK's transparent id: the launchers' resources keep the logical IDs they had when they were
        # built directly in this stack, and so do the EventBridge permissions named after the functions' paths.
        launchers = TrainingLaunchers(
            self,
            "Default",
            config=config,
            job_name_prefix=prefix,
            training_role=self.training_role,
            train_image_uri=train_image.image_uri,
            serve_image_uri=data.serve_image.image_uri,
            datasets_bucket=data.datasets_bucket,
            artifacts_bucket=data.artifacts_bucket,
            key=data.key,
            model_package_group=data.model_package_group,
            notify_topic=self.notify_topic,
            dead_letters=self.dead_letters,
        )
        self.runner = launchers.runner
        self.registrar = launchers.registrar
        self.model_package_group_name = launchers.model_package_group_name
        self.events = TrainingEvents(
            self,
            "Events",
            stage=config.name,
            job_name_prefix=prefix,
            datasets_bucket=data.datasets_bucket,
            runner=self.runner.function,
            registrar=self.registrar.function,
            dead_letters=self.dead_letters,
            notify_topic=self.notify_topic,
        )
        keep_logical_ids(self.events)  # the rules and alarms were built directly in this stack before
        self._outputs(config, data, prefix)

    def _outputs(self, config: StageConfig, data: StatefulStack, prefix: str) -> None:
        """What scripts/training.py reads (never hard-coded names)."""
        outputs = {
            TrainingOutputs.RUNNER_FUNCTION_NAME: self.runner.function.function_name,
            TrainingOutputs.REGISTRAR_FUNCTION_NAME: self.registrar.function.function_name,
            TrainingOutputs.TRAINING_ROLE_ARN: self.training_role.role_arn,
            TrainingOutputs.MODEL_PACKAGE_GROUP_NAME: self.model_package_group_name,
            TrainingOutputs.JOB_NAME_PREFIX: prefix,
            TrainingOutputs.NOTIFY_TOPIC_ARN: self.notify_topic.topic_arn,
            TrainingOutputs.TRAINING_INSTANCE_TYPE: config.training.instance_type,
            TrainingOutputs.TRAINING_USES_SPOT: json.dumps(config.training.use_spot),
            TrainingOutputs.TRAINING_INSTANCE_COUNT: str(config.training.instance_count),
            # scripts/dataprep_job.py: SageMaker Processing jobs of the dataprep image
            TrainingOutputs.DATAPREP_IMAGE_URI: self.dataprep.image.image_uri,
            TrainingOutputs.DATAPREP_ROLE_ARN: self.dataprep.role.role_arn,
            TrainingOutputs.DATASETS_BUCKET_NAME: data.datasets_bucket.bucket_name,
            TrainingOutputs.DATA_KEY_ARN: data.key.key_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
