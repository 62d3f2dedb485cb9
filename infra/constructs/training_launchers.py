"""TrainingLaunchers: the runner and registrar Lambdas of a stage, their dependency layer, their environment (names
from app/contracts/launcher_environment.py, read back by app/launcher/settings.py) and their least-privilege grants.

The runner starts one training job per dataset, named with the stage prefix (IAM scopes CreateTrainingJob to it) and
run by the training role it may pass to SageMaker only. The registrar registers finished jobs as versions in the
stage's model package group. Both publish to the notify topic and hand what failed after retries to ``dead_letters``.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app.contracts import launcher_environment as env
from app.contracts.storage import CHECKPOINTS_PREFIX, EVALUATION_DIR, TRAINING_OUTPUT_PREFIX
from infra.config import StageConfig
from infra.constructs import training_names as names
from infra.constructs.training_lambda import LauncherFunction, dependencies_layer
from infra.nag import acknowledge, acknowledge_resource

_HOUR = 3600


class TrainingLaunchers(Construct):
    """Public: ``runner``, ``registrar`` (LauncherFunction), ``model_package_group_name`` (the group's ARN, which
    SageMaker's model package APIs accept as its name)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        job_name_prefix: str,
        training_role: iam.IRole,
        train_image_uri: str,
        serve_image_uri: str,
        datasets_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        model_package_group: sagemaker.CfnModelPackageGroup,
        notify_topic: sns.ITopic,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.training
        layer = dependencies_layer(self, "LauncherDependencies")
        shared_env = {
            env.STAGE: config.name,
            env.JOB_NAME_PREFIX: job_name_prefix,
            env.NOTIFY_TOPIC_ARN: notify_topic.topic_arn,
        }

        def make_launcher(
            construct_id: str, *, handler: str, purpose: str, timeout_s: int, environment: dict[str, str]
        ) -> LauncherFunction:
            return LauncherFunction(
                self,
                construct_id,
                handler=handler,
                description=f"{config.name}: {purpose}",
                timeout=cdk.Duration.seconds(timeout_s),
                memory_mb=256,
                environment={**shared_env, **environment},
                layer=layer,
                dead_letters=dead_letters,
                alarm_topic=notify_topic,
                log_retention_days=config.log_retention_days,
                retain_logs=config.retain_data,
                # Opt-in (unset by default): see LauncherFunction for what keeps an event storm harmless without it.
                reserved_concurrency=settings.launcher_reserved_concurrency,
            )

        artifacts = artifacts_bucket.bucket_name
        # The group's ARN, not its name: SageMaker's model package APIs take either, and the name holds the Data
        # stack's id (infra/stacks/stateful.py), which another stack can only reference as a whole value.
        self.model_package_group_name: str = model_package_group.attr_model_package_group_arn
        champion_env = {
            env.MODEL_PACKAGE_GROUP_NAME: self.model_package_group_name,
            env.CHAMPION_MAP_DROP_TOLERANCE: str(settings.champion_map_drop_tolerance),
            env.CHAMPION_CLASS_DROP_TOLERANCE: str(settings.champion_class_drop_tolerance),
            env.CHAMPION_MIN_CLASS_INSTANCES: str(settings.champion_min_class_instances),
            env.CHAMPION_CONFIDENCE: str(settings.champion_confidence),
        }
        self.runner = make_launcher(
            "Runner",
            handler="app.launcher.runner.handler",
            purpose="start a training job for a dataset",
            timeout_s=60,
            environment={
                env.TRAINING_IMAGE_URI: train_image_uri,
                env.TRAINING_ROLE_ARN: training_role.role_arn,
                env.INSTANCE_TYPE: settings.instance_type,
                env.INSTANCE_COUNT: str(settings.instance_count),
                env.VOLUME_SIZE_GB: str(settings.volume_size_gb),
                env.MAX_RUNTIME_SECONDS: str(round(settings.max_runtime_hours * _HOUR)),
                env.USE_SPOT: json.dumps(settings.use_spot),
                env.MAX_WAIT_SECONDS: str(round(settings.max_wait_hours * _HOUR)),
                env.NETWORK_ISOLATION: json.dumps(settings.network_isolation),
                env.SUBNET_IDS: json.dumps(list(settings.subnet_ids)),
                env.SECURITY_GROUP_IDS: json.dumps(list(settings.security_group_ids)),
                env.KMS_KEY_ARN: key.key_arn,
                env.DATASETS_BUCKET: datasets_bucket.bucket_name,
                env.OUTPUT_S3_URI: f"s3://{artifacts}/{TRAINING_OUTPUT_PREFIX}",
                env.CHECKPOINT_S3_URI: f"s3://{artifacts}/{CHECKPOINTS_PREFIX}",
                env.DEFAULT_HYPERPARAMETERS: json.dumps(settings.default_hyperparameters, sort_keys=True),
                env.INT8_MAP_DROP_CAP: str(settings.int8_map_drop_cap),
                env.INT8_CLASS_DROP_CAP: str(settings.int8_class_drop_cap),
                env.TAGS: json.dumps(config.tags, sort_keys=True),
                **champion_env,
            },
        )
        self.registrar = make_launcher(
            "Registrar",
            handler="app.launcher.registrar.handler",
            purpose="register finished training jobs as model versions",
            # streams the job's model.tar.gz from S3 up to its model.json and comparison reports
            timeout_s=120,
            environment={
                **champion_env,
                env.QUALITY_BAR_MAP50_95: str(settings.quality_bar_map50_95),
                env.SERVE_IMAGE_URI: serve_image_uri,
            },
        )
        jobs = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="training-job", resource_name=f"{job_name_prefix}*"
        )
        group_versions = cdk.Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package",
            # versions of the stage's retained group(s): the group name's suffix is the Data stack's id
            resource_name=f"{names.model_package_group_name(config.name)}-*/*",
        )
        self._grant_runner(jobs, training_role, notify_topic)
        self._grant_registrar(jobs, group_versions, model_package_group, notify_topic)
        self._grant_champion_reads(group_versions)
        self._grant_evidence(artifacts_bucket, job_name_prefix)
        for launcher in (self.runner, self.registrar):
            self._acknowledge(launcher, jobs)

    def _grant_runner(self, jobs: str, training_role: iam.IRole, notify_topic: sns.ITopic) -> None:
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
                resources=[training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        notify_topic.grant_publish(runner)

    def _grant_registrar(
        self,
        jobs: str,
        group_versions: str,
        model_package_group: sagemaker.CfnModelPackageGroup,
        notify_topic: sns.ITopic,
    ) -> None:
        registrar = self.registrar.function
        registrar.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[jobs])
        )
        registrar.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModelPackage"],
                resources=[model_package_group.attr_model_package_group_arn, group_versions],
            )
        )
        notify_topic.grant_publish(registrar)
        acknowledge_resource(
            registrar,
            "AwsSolutions-IAM5",
            "model package versions are numbered by SageMaker inside this stage's model package group (its name "
            "ends in the Data stack's id, so a re-created stack never collides with the retained group)",
            resource=group_versions,
        )

    def _grant_champion_reads(self, group_versions: str) -> None:
        """The runner finds the stage's champion, the registrar checks that a job without one had none to compare
        with: ListModelPackages (newest Approved) and, for the runner, DescribeModelPackage (its model data)."""
        for launcher, actions in (
            (self.runner, ["sagemaker:DescribeModelPackage"]),
            (self.registrar, []),
        ):
            fn = launcher.function
            if actions:
                fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[group_versions]))
            # ListModelPackages has no resource type in the Service Authorization Reference (Amazon SageMaker,
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html): an
            # action without one is granted on "*" only; the request names the stage's group.
            fn.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
            )
            acknowledge(
                fn,
                "AwsSolutions-IAM5",
                "sagemaker:ListModelPackages supports no resource scope (Service Authorization Reference); it "
                "lists versions only, and the function asks for its stage's group",
                applies_to="Resource::*",
            )
        acknowledge_resource(
            self.runner.function,
            "AwsSolutions-IAM5",
            "the champion is a version of this stage's model package group (numbered by SageMaker)",
            resource=group_versions,
        )

    def _grant_evidence(self, artifacts_bucket: s3.IBucket, job_name_prefix: str) -> None:
        """The registrar reads a finished job's model.tar.gz (its model.json) and writes the comparison report next
        to it (``<job>/evaluation/``), both encrypted with the artifacts bucket's key."""
        registrar = self.registrar.function
        jobs_output = f"{TRAINING_OUTPUT_PREFIX}{job_name_prefix}*"
        # Exactly the calls it makes (the journey's permissions report flags anything wider): GetObject of
        # model.tar.gz, PutObject of the reports, and with SSE-KMS the key's Decrypt (read) and GenerateDataKey
        # (write). Amazon S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)", Permissions:
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
        model = f"{jobs_output}/output/model.tar.gz"
        reports = f"{jobs_output}/{EVALUATION_DIR}*"
        registrar.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[artifacts_bucket.arn_for_objects(model)])
        )
        registrar.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[artifacts_bucket.arn_for_objects(reports)]
            )
        )
        if artifacts_bucket.encryption_key is not None:
            registrar.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[artifacts_bucket.encryption_key.key_arn],
                )
            )
        for pattern in (model, reports):
            acknowledge_resource(
                registrar,
                "AwsSolutions-IAM5",
                "one object kind of this stage's training jobs (every job is named with the stage prefix)",
                resource=f"{artifacts_bucket.bucket_arn}/{pattern}",
            )

    @staticmethod
    def _acknowledge(launcher: LauncherFunction, jobs: str) -> None:
        fn = launcher.function
        basic_execution = iam.ManagedPolicy.from_aws_managed_policy_name(
            "service-role/AWSLambdaBasicExecutionRole"
        )
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
            "Resource '*' is X-Ray's PutTraceSegments/PutTelemetryRecords, which support no resource scope",
            applies_to="Resource::*",
        )
        acknowledge(
            fn,
            "AwsSolutions-IAM5",
            "kms:GenerateDataKey* comes from the SNS publish grant and is scoped to the key that encrypts the "
            "notify topic",
            applies_to="Action::kms:GenerateDataKey*",
        )
        acknowledge_resource(
            fn,
            "AwsSolutions-IAM5",
            "scoped to this stage's training jobs: every job the runner starts is named with the stage prefix",
            resource=jobs,
        )
        for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
            acknowledge(
                fn,
                rule,
                "python3.12 matches the dependency layer's wheels (scripts/build_lambda_layer.sh "
                "--python-version 3.12); bump both together",
            )
        acknowledge(
            fn,
            "Serverless-LambdaDLQ",
            "async failures go to an SQS on-failure destination (EventInvokeConfig), the successor of the legacy "
            "DeadLetterConfig",
        )
