"""Training stack of a stage: the SageMaker training role, the runner and registrar Lambdas, the EventBridge rules
that drive them (finished jobs are registered in the stateful stack's model package group), the notify topic, alarms, and the
dataprep image + Processing role (``scripts/dataprep_job.py`` turns a raw manifest into a dataset with them).

Flow: a ``dataset.json`` lands in the datasets bucket (or an operator invokes the runner) -> runner starts one
training job named ``<stage prefix><dataset>-<hash>`` -> SageMaker's "Training Job State Change" event -> registrar
registers a model package version (Completed) or publishes the failure (Failed/Stopped) to the notify topic.
Operator scripts (``scripts/training.py``) find everything through this stack's outputs.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app.contracts import launcher_environment as env
from app.contracts.stack_outputs import TrainingOutputs
from app.contracts.storage import (
    CHECKPOINTS_PREFIX,
    DATASET_MANIFEST_SUFFIX,
    TRAINING_OUTPUT_PREFIX,
)
from infra.config import StageConfig
from infra.constructs import training_names as names
from infra.constructs.dataprep_job import DataprepJob
from infra.constructs.images import ContainerImage, serve_build_args, train_build_args
from infra.constructs.training_lambda import LauncherFunction, dependencies_layer
from infra.constructs.training_role import TrainingRole
from infra.nag import acknowledge, acknowledge_resource
from infra.release import StageRelease
from infra.stacks.stateful import StatefulStack

TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
_HOUR = 3600


def job_name_prefix(config: StageConfig) -> str:
    """Every training job of the stage starts with this (IAM scopes CreateTrainingJob to it)."""
    return names.job_name_prefix(config.name)


class TrainingStack(cdk.Stack):
    """Public attributes: ``training_role``, ``runner``, ``registrar``, ``notify_topic``."""

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
        prefix = job_name_prefix(config)
        train_image = ContainerImage(
            self,
            "TrainImage",
            name="train",
            pinned_uri=release.train if release else config.images.train,
            build_args=train_build_args(),
        )
        serve_image = ContainerImage(
            self,
            "ServeImage",
            name="serve",
            pinned_uri=release.serve if release else config.images.serve,
            build_args=serve_build_args(config.endpoint.instance_type),
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
        )

        self.notify_topic = sns.Topic(
            self, "NotifyTopic", display_name=f"{config.name} training", master_key=data.key, enforce_ssl=True
        )
        # CloudWatch alarms publish to the encrypted topic; only for alarms of this account.
        data.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
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
        for email in config.alarm_emails:
            self.notify_topic.add_subscription(
                subscriptions.EmailSubscription(email, dead_letter_queue=self.dead_letters)
            )
        layer = dependencies_layer(self, "LauncherDependencies")
        common: dict[str, Any] = {
            "layer": layer,
            "dead_letters": self.dead_letters,
            "alarm_topic": self.notify_topic,
            "log_retention_days": config.log_retention_days,
            "retain_logs": config.retain_data,
            # Opt-in (unset by default): see LauncherFunction for what keeps an event storm harmless without it.
            "reserved_concurrency": settings.launcher_reserved_concurrency,
        }
        shared_env = {
            env.STAGE: config.name,
            env.JOB_NAME_PREFIX: prefix,
            env.NOTIFY_TOPIC_ARN: self.notify_topic.topic_arn,
        }

        artifacts = data.artifacts_bucket.bucket_name
        self.datasets_bucket_name = data.datasets_bucket.bucket_name
        self.data_key_arn = data.key.key_arn
        self.runner = LauncherFunction(
            self,
            "Runner",
            handler="app.launcher.runner.handler",
            description=f"{config.name}: start a training job for a dataset",
            timeout=cdk.Duration.seconds(60),
            memory_mb=256,
            environment={
                **shared_env,
                env.TRAINING_IMAGE_URI: train_image.image_uri,
                env.TRAINING_ROLE_ARN: self.training_role.role_arn,
                env.INSTANCE_TYPE: settings.instance_type,
                env.INSTANCE_COUNT: str(settings.instance_count),
                env.VOLUME_SIZE_GB: str(settings.volume_size_gb),
                env.MAX_RUNTIME_SECONDS: str(round(settings.max_runtime_hours * _HOUR)),
                env.USE_SPOT: json.dumps(settings.use_spot),
                env.MAX_WAIT_SECONDS: str(round(settings.max_wait_hours * _HOUR)),
                env.NETWORK_ISOLATION: json.dumps(settings.network_isolation),
                env.SUBNET_IDS: json.dumps(list(settings.subnet_ids)),
                env.SECURITY_GROUP_IDS: json.dumps(list(settings.security_group_ids)),
                env.KMS_KEY_ARN: data.key.key_arn,
                env.DATASETS_BUCKET: data.datasets_bucket.bucket_name,
                env.OUTPUT_S3_URI: f"s3://{artifacts}/{TRAINING_OUTPUT_PREFIX}",
                env.CHECKPOINT_S3_URI: f"s3://{artifacts}/{CHECKPOINTS_PREFIX}",
                env.DEFAULT_HYPERPARAMETERS: json.dumps(settings.default_hyperparameters, sort_keys=True),
                env.TAGS: json.dumps(config.tags, sort_keys=True),
            },
            **common,
        )
        self.model_package_group = data.model_package_group
        # The group's ARN, not its name: SageMaker's model package APIs take either, and the name holds the Data
        # stack's id (infra/stacks/stateful.py), which another stack can only reference as a whole value.
        self.model_package_group_name = self.model_package_group.attr_model_package_group_arn
        self.registrar = LauncherFunction(
            self,
            "Registrar",
            handler="app.launcher.registrar.handler",
            description=f"{config.name}: register finished training jobs as model versions",
            timeout=cdk.Duration.seconds(30),
            memory_mb=256,
            environment={
                **shared_env,
                env.MODEL_PACKAGE_GROUP_NAME: self.model_package_group_name,
                env.QUALITY_BAR_MAP50_95: str(settings.quality_bar_map50_95),
                env.SERVE_IMAGE_URI: serve_image.image_uri,
            },
            **common,
        )
        self._grant_launchers(config, prefix)
        self._rules(config, data, prefix)
        self._outputs(config, prefix)

    def _grant_launchers(self, config: StageConfig, prefix: str) -> None:
        jobs = self.format_arn(service="sagemaker", resource="training-job", resource_name=f"{prefix}*")
        runner = self.runner.function
        runner.add_to_role_policy(
            iam.PolicyStatement(
                # AddTags: CreateTrainingJob with Tags is authorized as both actions on the job.
                actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"],
                resources=[jobs],
            )
        )
        # Scoped to the training role, and only for handing it to SageMaker (not to any other service).
        runner.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self.notify_topic.grant_publish(runner)

        registrar = self.registrar.function
        group_versions = self.format_arn(
            service="sagemaker",
            resource="model-package",
            # versions of the stage's retained group(s): the group name's suffix is the Data stack's id
            resource_name=f"{names.model_package_group_name(config.name)}-*/*",
        )
        registrar.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[jobs])
        )
        registrar.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModelPackage"],
                resources=[
                    self.model_package_group.attr_model_package_group_arn,
                    group_versions,
                ],
            )
        )
        self.notify_topic.grant_publish(registrar)
        basic_execution = iam.ManagedPolicy.from_aws_managed_policy_name(
            "service-role/AWSLambdaBasicExecutionRole"
        )
        for launcher in (self.runner, self.registrar):
            fn = launcher.function
            acknowledge_resource(
                fn,
                "AwsSolutions-IAM4",
                "AWSLambdaBasicExecutionRole only lets the function write its own logs (CloudWatch Logs)",
                kind="Policy",
                resource=basic_execution.managed_policy_arn,
            )
            acknowledge(
                fn,
                "AwsSolutions-IAM5",
                "Resource '*' is X-Ray's PutTraceSegments/PutTelemetryRecords, "
                "which support no resource scope",
                applies_to="Resource::*",
            )
            acknowledge(
                fn,
                "AwsSolutions-IAM5",
                "kms:GenerateDataKey* comes from the SNS publish grant and is "
                "scoped to the stage key that encrypts the notify topic",
                applies_to="Action::kms:GenerateDataKey*",
            )
            acknowledge_resource(
                fn,
                "AwsSolutions-IAM5",
                "scoped to this stage's training jobs: every job the "
                "runner starts is named with the stage prefix",
                resource=jobs,
            )
            for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
                acknowledge(
                    fn,
                    rule,
                    "python3.12 matches the dependency layer's wheels (scripts/"
                    "build_lambda_layer.sh --python-version 3.12); bump both together",
                )
            acknowledge(
                fn,
                "Serverless-LambdaDLQ",
                "async failures go to an SQS on-failure destination "
                "(EventInvokeConfig), the successor of the legacy DeadLetterConfig",
            )
        acknowledge_resource(
            registrar,
            "AwsSolutions-IAM5",
            "model package versions are numbered by SageMaker inside this stage's model package group (its name "
            "ends in the Data stack's id, so a re-created stack never collides with the retained group)",
            resource=f"{group_versions}",
        )

    def _rules(self, config: StageConfig, data: StatefulStack, prefix: str) -> None:
        target_options: dict[str, Any] = {
            "dead_letter_queue": self.dead_letters,
            "retry_attempts": 4,
            "max_event_age": cdk.Duration.hours(2),
        }
        self.dataset_rule = events.Rule(
            self,
            "DatasetLanded",
            description=f"{config.name}: a dataset.json in the datasets bucket starts a training job",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data.datasets_bucket.bucket_name]},
                    "object": {"key": [{"suffix": f"/{DATASET_MANIFEST_SUFFIX}"}]},
                },
            ),
            targets=[targets.LambdaFunction(self.runner.function, **target_options)],
        )

        def job_pattern(statuses: list[str]) -> events.EventPattern:
            return events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[TRAINING_JOB_STATE_CHANGE],
                detail={"TrainingJobName": [{"prefix": prefix}], "TrainingJobStatus": statuses},
            )

        self.job_finished_rule = events.Rule(
            self,
            "TrainingJobFinished",
            description=f"{config.name}: completed (or stopped) training jobs -> model registry / notify",
            event_pattern=job_pattern(["Completed", "Stopped"]),
            targets=[targets.LambdaFunction(self.registrar.function, **target_options)],
        )
        self.job_failed_rule = events.Rule(
            self,
            "TrainingJobFailed",
            description=f"{config.name}: failed training jobs -> notify with the reason",
            event_pattern=job_pattern(["Failed"]),
            targets=[targets.LambdaFunction(self.registrar.function, **target_options)],
        )
        self.failed_jobs_alarm = cloudwatch.Alarm(
            self,
            "TrainingJobFailedAlarm",
            alarm_description=f"{config.name}: a training job failed (the notify topic has the reason)",
            metric=cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="MatchedEvents",
                dimensions_map={"RuleName": self.job_failed_rule.rule_name},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failed_jobs_alarm.add_alarm_action(cw_actions.SnsAction(self.notify_topic))
        self.dead_letters_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description=f"{config.name}: launcher events failed after all retries; inspect the queue",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letters_alarm.add_alarm_action(cw_actions.SnsAction(self.notify_topic))

    def _outputs(self, config: StageConfig, prefix: str) -> None:
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
            TrainingOutputs.DATASETS_BUCKET_NAME: self.datasets_bucket_name,
            TrainingOutputs.DATA_KEY_ARN: self.data_key_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
