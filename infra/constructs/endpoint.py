"""ServingEndpoint: the SageMaker model, endpoint config and real-time endpoint of one stage (L1 constructs).

- Model: the serve image (or the image of a registered model package) with the stage's model version, network
  isolation on, and an execution role that reads only that model version, writes only data capture, pulls only the
  serve image and logs only to the endpoint's log groups.
- Endpoint config: one production variant (instance type, initial count, container start-up and model download
  timeouts), data capture into ``data-capture/`` of the artifacts bucket under KMS, and a KMS volume key only where
  the instance type has EBS storage (``app.contracts.instance_types.supports_volume_kms_key``).
- Endpoint: blue/green updates (all-at-once, canary or linear traffic shifting) that roll back on the alarms passed
  to ``guard_with`` (the execution role may describe exactly those alarms), and ``RetainAllVariantProperties`` so an
  update keeps the capacity autoscaling has set - except on the deploy that changes data capture (below).

Data capture under ``RetainAllVariantProperties``: DataCaptureConfig is a variant property that
``ExcludeRetainedVariantProperties`` cannot exclude ("Not currently supported", CloudFormation
AWS::SageMaker::Endpoint VariantProperty, https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/
aws-properties-sagemaker-endpoint-variantproperty.html, read 2026-11-30), so a retaining update may keep the old
capture. The stage records what the live endpoint captures (``endpoint.data_capture_percent_live``); when it differs
from ``data_capture_percent``, that deploy does not retain variant properties (the new fleet starts at
``initial_instance_count``, then autoscaling takes over) and synth warns with what to do after it.

Identity follows the instance type (``variant_name``), and the stack builds this construct under an id derived from
it: changing the instance type creates a new endpoint (and scalable target) instead of an update that SageMaker
refuses on an autoscaled variant. See README.md, "Operating the endpoint".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from app.contracts import instance_types
from app.contracts import serving_environment as serving_env
from app.contracts.storage import DATA_CAPTURE_PREFIX, MODELS_PREFIX, TRAINING_OUTPUT_PREFIX
from infra.config import DeploymentSettings, EndpointSettings
from infra.constructs.sagemaker_roles import grant_sagemaker_logs, log_group_arn
from infra.nag import acknowledge, acknowledge_resource


@dataclass(frozen=True)
class ModelData:
    """A release's model.tar.gz in the registry's model store (possibly another account's bucket and key)."""

    url: str  # s3://<bucket>/<key>
    object_arn: str  # arn:<partition>:s3:::<bucket>/<key>
    kms_key_arn: str | None
    # The model store's prefixes in that bucket (models/*, training-output/*): what the role reads. Not the one
    # object: each release replaces the Model but keeps the old one (retained for SageMaker's alarm rollback), and a
    # rolled-back endpoint's scale-out or instance replacement downloads the OLD model.tar.gz with this same role.
    store_arns: tuple[str, ...] = ()


def variant_name(instance_type: str) -> str:
    """``ml.g5.xlarge`` -> ``g5-xlarge``: the variant (and endpoint identity) follows the instance type."""
    return instance_type.removeprefix("ml.").replace(".", "-")


def serving_environment(settings: EndpointSettings) -> dict[str, str]:
    """The container's environment: the stage's settings, SERVING_PRECISION from ``endpoint.precision`` (the server
    refuses to become healthy when the artifact lacks that graph; synth already checked the release ships it), plus
    SERVING_DEVICE=cuda on GPU instances so the server fails its health check rather than serving on the CPU when
    ONNX Runtime cannot use the GPU."""
    env = dict(settings.environment)
    env[serving_env.PRECISION] = settings.precision
    if instance_types.is_gpu(settings.instance_type):
        env[serving_env.DEVICE] = "cuda"
    return env


def traffic_routing(deployment: DeploymentSettings) -> sagemaker.CfnEndpoint.TrafficRoutingConfigProperty:
    """The blue/green traffic shift of a stage: all at once, a canary then the rest, or linear steps."""
    percent = sagemaker.CfnEndpoint.CapacitySizeProperty
    if deployment.strategy == "canary":
        canary = (
            percent(type="INSTANCE_COUNT", value=deployment.canary_instances)
            if deployment.canary_instances is not None
            else percent(type="CAPACITY_PERCENT", value=deployment.canary_percent)
        )
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="CANARY",
            canary_size=canary,
            wait_interval_in_seconds=deployment.wait_interval_s,
        )
    if deployment.strategy == "linear":
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="LINEAR",
            linear_step_size=percent(type="CAPACITY_PERCENT", value=deployment.linear_step_percent),
            wait_interval_in_seconds=deployment.wait_interval_s,
        )
    return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type="ALL_AT_ONCE", wait_interval_in_seconds=deployment.wait_interval_s
    )


class ServingEndpoint(Construct):
    """Model + endpoint config + endpoint. Public: ``endpoint_name``, ``endpoint_config_name``, ``variant_name``,
    ``model_name``, ``role``, ``endpoint`` (the CfnEndpoint)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EndpointSettings,
        image_uri: str,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        model_data: ModelData | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not settings.has_model_version and model_data is None:
            raise ValueError(
                "ServingEndpoint needs a model version (endpoint.model_data_key or model_package_arn)"
            )
        self.settings = settings
        self.variant_name = variant_name(settings.instance_type)

        self.role = self._execution_role(settings, artifacts_bucket, key, model_data)
        environment = serving_environment(settings)
        if model_data:
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri, model_data_url=model_data.url, environment=environment or None
            )
        elif settings.model_data_key:
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=artifacts_bucket.s3_url_for_object(settings.model_data_key),
                environment=environment or None,
            )
        else:  # a registered model package carries its own image and model data
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=settings.model_package_arn,
                environment=environment or None,
            )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=container,
            enable_network_isolation=True,
        )
        # SageMaker checks the role's permissions when it creates the model: the policy must exist first.
        self.model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))

        kms_volume = instance_types.supports_volume_kms_key(settings.instance_type)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=self.variant_name,
                    model_name=self.model.attr_model_name,
                    instance_type=settings.instance_type,
                    initial_instance_count=settings.initial_instance_count,
                    initial_variant_weight=1.0,
                    container_startup_health_check_timeout_in_seconds=settings.startup_health_check_timeout_s,
                    model_data_download_timeout_in_seconds=settings.model_download_timeout_s,
                    inference_ami_version=settings.ami_version,  # GPU: the driver/CUDA the image needs
                )
            ],
            kms_key_id=key.key_arn if kms_volume else None,
            data_capture_config=self._data_capture(settings, artifacts_bucket, key),
        )
        if not kms_volume:
            acknowledge(
                self.endpoint_config,
                "AwsSolutions-SM2",
                f"{settings.instance_type} has local NVMe instance storage, which SageMaker encrypts with the "
                "instance's hardware module and for which it rejects a KMS volume key.",
            )

        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            retain_all_variant_properties=not settings.data_capture_changes,
            deployment_config=self._deployment_config(settings.deployment, alarm_names=()),
        )
        self.endpoint_name: str = self.endpoint.attr_endpoint_name
        self.endpoint_config_name: str = self.endpoint_config.attr_endpoint_config_name
        self.model_name: str = self.model.attr_model_name
        if settings.data_capture_changes:
            cdk.Annotations.of(self).add_warning_v2(
                "data-capture-change",
                f"data capture changes from {settings.data_capture_percent_live}% to {settings.data_capture_percent}%: "
                "this deploy does not retain variant properties (DataCaptureConfig cannot be excluded from "
                f"RetainAllVariantProperties), so the new fleet starts at initial_instance_count "
                f"({settings.initial_instance_count}) before autoscaling takes over; deploy off peak or raise "
                "initial_instance_count for it, and once scripts/verify_endpoint.py passes set "
                f"endpoint.data_capture_percent_live to {settings.data_capture_percent} (or remove it)",
            )

        acknowledge(
            self.model,
            "AwsSolutions-SM1",
            "The model runs with network isolation (no network access at all), so there is no VPC traffic to "
            "control; SageMaker fetches the model data and image on the container's behalf.",
        )

    def _execution_role(
        self,
        settings: EndpointSettings,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        model_data: ModelData | None,
    ) -> iam.Role:
        """The role SageMaker runs the model with: reads its model version, writes data capture and its logs and
        metrics (the serve image's pull grant is added by whoever owns the image)."""
        role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker endpoint: reads its model version, writes data capture, pulls the serve image",
        )
        # Hand-scoped statements (exact actions), not grant_read/grant_put, whose action wildcards would need
        # acknowledging: the role reads the model store's prefixes (a release: every model a retained Model may
        # use) or one object, and writes only data capture.
        reads = (
            list(model_data.store_arns or (model_data.object_arn,))
            if model_data
            else [artifacts_bucket.arn_for_objects(settings.model_data_key)]
            if settings.model_data_key
            else [
                artifacts_bucket.arn_for_objects(f"{prefix}*")
                for prefix in (MODELS_PREFIX, TRAINING_OUTPUT_PREFIX)
            ]
        )
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=reads))
        role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]))
        if model_data and model_data.kms_key_arn:  # the model store's key (the registry's account)
            role.add_to_policy(
                iam.PolicyStatement(actions=["kms:Decrypt"], resources=[model_data.kms_key_arn])
            )
        if instance_types.supports_volume_kms_key(settings.instance_type):
            # The instances' EBS volumes are encrypted with the stage key (KmsKeyId below): SageMaker creates a
            # grant on it for the instances, on this role's behalf, and only for AWS resources.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant", "kms:DescribeKey"],
                    resources=[key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        if settings.data_capture_percent:
            capture = artifacts_bucket.arn_for_objects(f"{DATA_CAPTURE_PREFIX}*")
            role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[capture]))
            role.add_to_policy(
                iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Encrypt"], resources=[key.key_arn])
            )
            acknowledge_resource(
                role,
                "AwsSolutions-IAM5",
                resource=capture,
                reason="SageMaker names data-capture objects per endpoint, variant and hour; writes are limited to the "
                "data-capture/ prefix of this stage's artifacts bucket.",
            )
        if model_data and model_data.store_arns:
            for arn in reads:
                acknowledge_resource(
                    role,
                    "AwsSolutions-IAM5",
                    resource=arn,
                    reason="Read-only on the registry's model store (models/, training-output/): the Models of "
                    "earlier releases stay for SageMaker's alarm rollback and download their own model.tar.gz with "
                    "this role on any scale-out or instance replacement.",
                )
        if settings.model_package_arn:
            for arn in reads:
                acknowledge_resource(
                    role,
                    "AwsSolutions-IAM5",
                    resource=arn,
                    reason="A registered model package points at a training job's model.tar.gz under models/ or "
                    "training-output/; reads are limited to those prefixes of this stage's artifacts bucket.",
                )
        # The platform writes the container's stdout and its metrics with the execution role.
        log_groups = log_group_arn(self, "/aws/sagemaker/Endpoints/*")
        grant_sagemaker_logs(role, log_groups, f"{log_groups}:log-stream:*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints", "AWS/SageMaker"]}
                },
            )
        )

        acknowledge_resource(
            role,
            "AwsSolutions-IAM5",
            "CloudWatch Logs log-stream names are chosen by SageMaker per instance; scoped to this account's "
            "/aws/sagemaker/Endpoints log groups.",
            resource=log_groups,
        )
        acknowledge_resource(
            role,
            "AwsSolutions-IAM5",
            "Log streams of the endpoint log groups are created by SageMaker per instance, names unknown at "
            "deploy time.",
            resource=f"{log_groups}:log-stream:*",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "cloudwatch:PutMetricData supports no resource ARNs; the condition limits it to the SageMaker "
            "endpoint namespaces.",
            applies_to="Resource::*",
        )
        return role

    @staticmethod
    def _data_capture(
        settings: EndpointSettings, bucket: s3.IBucket, key: kms.IKey
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        if not settings.data_capture_percent:
            return None
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=settings.data_capture_percent,
            destination_s3_uri=bucket.s3_url_for_object(DATA_CAPTURE_PREFIX.rstrip("/")),
            kms_key_id=key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                json_content_types=["application/json"]
            ),
        )

    @staticmethod
    def _deployment_config(
        deployment: DeploymentSettings, *, alarm_names: Sequence[str]
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        rollback = None
        if deployment.rollback_on_alarms and alarm_names:
            rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in alarm_names]
            )
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=traffic_routing(deployment),
                termination_wait_in_seconds=deployment.termination_wait_s,
                maximum_execution_timeout_in_seconds=deployment.max_execution_timeout_s,
            ),
            auto_rollback_configuration=rollback,
        )

    def guard_with(self, alarm_names: Sequence[str]) -> None:
        """Roll a deployment back when one of these alarms fires (when the stage's config asks for it).

        Plain names, not references: the alarms watch this endpoint, so a reference back would be a cycle. SageMaker
        reads the alarms with the execution role: "Ensure that your IAM execution role has permission to perform the
        cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify" (SageMaker deployment guardrails,
        Auto-Rollback Configuration and Monitoring, https://docs.aws.amazon.com/sagemaker/latest/dg/
        deployment-guardrails-configuration.html, read 2026-11-30). Granted on exactly those alarms' ARNs.
        """
        self.endpoint.deployment_config = self._deployment_config(
            self.settings.deployment, alarm_names=alarm_names
        )
        if not (self.settings.deployment.rollback_on_alarms and alarm_names):
            return
        stack = cdk.Stack.of(self)
        arns = [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=name,
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in alarm_names
        ]
        self.role.add_to_policy(iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=arns))
