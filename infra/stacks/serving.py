"""Serving stack of a stage: model, endpoint config, endpoint, autoscaling, alarms (+ SNS topic), dashboard.

A stage without a model version gets the topic and the dashboard (training rows) but no endpoint, and says so in
an ``EndpointStatus`` output and a synth-time info annotation. The endpoint's constructs sit under an id derived
from the instance type (``Endpoint-<variant>``): see infra/constructs/endpoint.py for why.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from app.contracts.storage import MODELS_PREFIX, TRAINING_OUTPUT_PREFIX
from infra.config import StageConfig
from infra.constructs.endpoint import ModelData, ServingEndpoint, variant_name
from infra.constructs.endpoint_scaling import EndpointAutoscaling
from infra.constructs.monitoring import AlarmTopic, EndpointAlarms
from infra.constructs.monitoring_dashboard import EndpointRef, ServingDashboard
from infra.constructs.release_verifier import ReleaseVerifierRole
from infra.constructs.training_names import release_parameter_name
from infra.stack_outputs import ServingOutputs
from infra.stacks.stateful import StatefulStack
from infra.stage_release import StageRelease


class ServingStack(cdk.Stack):
    """Public: ``endpoint`` (None without a model version), ``scaling``, ``alarms``, ``topic``, ``dashboard``."""

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
        kwargs.setdefault("description", f"{config.name}: SageMaker endpoint, autoscaling, alarms, dashboard")
        super().__init__(
            scope, construct_id, termination_protection=config.protect_stateless_stacks, **kwargs
        )
        settings = config.endpoint
        self.topic = AlarmTopic(
            self,
            "Alarms",
            display_name="Endpoint alarms",
            purpose="the endpoint alarm topic",
            emails=config.alarm_emails,
            retain=config.retain_data,
        ).topic
        self.endpoint: ServingEndpoint | None = None
        self.verifier: ReleaseVerifierRole | None = None  # the release pipeline's gates (with a pipeline)
        self.scaling: EndpointAutoscaling | None = None
        self.alarms: EndpointAlarms | None = None
        endpoint_ref: EndpointRef | None = None

        if settings.has_model_version or release is not None:
            image = data.serve_image
            variant = variant_name(settings.instance_type)
            scope_ = Construct(self, f"Endpoint-{variant}")  # identity follows the instance type
            self.endpoint = ServingEndpoint(
                scope_,
                "Serving",
                settings=settings,
                image_uri=image.image_uri,
                artifacts_bucket=data.artifacts_bucket,
                key=data.key,
                model_data=self._model_data(release) if release else None,
            )
            image.grant_pull(self.endpoint.role)
            # Rollback lands on what existed before: SageMaker's auto-rollback and a redeploy of the previous
            # release need the replaced Model and EndpointConfig to still exist (scripts.release cleanup prunes them).
            for resource in (self.endpoint.model, self.endpoint.endpoint_config):
                resource.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
            self.scaling = EndpointAutoscaling(
                scope_,
                "Scaling",
                settings=settings.autoscaling,
                endpoint_name=self.endpoint.endpoint_name,
                variant_name=variant,
            )
            self.alarms = EndpointAlarms(
                self,
                "EndpointAlarms",
                settings=settings.alarms,
                endpoint_name=self.endpoint.endpoint_name,
                variant_name=variant,
                instance_type=settings.instance_type,
                max_capacity=settings.autoscaling.max_capacity,
                scheduled=settings.autoscaling.scheduled,  # the max in force per window (nights lower)
                topic=self.topic,
            )
            self.endpoint.guard_with(self.alarms.rollback_alarm_names)
            endpoint_ref = EndpointRef(self.endpoint.endpoint_name, variant)
            # scripts/verify_endpoint.py compares the live endpoint with these.
            cdk.CfnOutput(self, ServingOutputs.ENDPOINT_NAME, value=self.endpoint.endpoint_name)
            cdk.CfnOutput(self, ServingOutputs.ENDPOINT_CONFIG_NAME, value=self.endpoint.endpoint_config_name)
            cdk.CfnOutput(self, ServingOutputs.VARIANT_NAME, value=variant)
            cdk.CfnOutput(self, ServingOutputs.MODEL_NAME, value=self.endpoint.model_name)
            cdk.CfnOutput(self, ServingOutputs.ENDPOINT_STATUS, value="created")
            if release is not None:
                cdk.CfnOutput(self, ServingOutputs.RELEASE_ID, value=release.release_id)
            if release is not None and release.pipeline_account:
                self.verifier = ReleaseVerifierRole(
                    self,
                    "ReleaseVerifier",
                    stage=config.name,
                    pipeline_account=release.pipeline_account,
                    endpoint_arn=self.endpoint.endpoint.ref,
                    release_parameter_name=release_parameter_name(config.name),
                )
        else:
            message = (
                f"{config.name}: no endpoint, the stage has no model version yet (set endpoint.model_data_key or "
                "endpoint.model_package_arn in infra/stages.py)"
            )
            cdk.Annotations.of(self).add_info(message)
            cdk.CfnOutput(self, ServingOutputs.ENDPOINT_STATUS, value=message)

        self.dashboard = ServingDashboard(
            self, "Dashboard", stage=config.name, settings=settings, endpoint=endpoint_ref
        ).dashboard
        cdk.CfnOutput(self, ServingOutputs.ALARM_TOPIC_ARN, value=self.topic.topic_arn)
        cdk.CfnOutput(self, ServingOutputs.DASHBOARD_NAME, value=self.dashboard.dashboard_name)

    def _model_data(self, release: StageRelease) -> ModelData:
        model = release.model
        store = f"arn:{self.partition}:s3:::{model.bucket}"
        return ModelData(
            url=model.model_data_uri,
            object_arn=f"{store}/{model.key}",
            kms_key_arn=model.kms_key_arn,
            store_arns=tuple(f"{store}/{prefix}*" for prefix in (MODELS_PREFIX, TRAINING_OUTPUT_PREFIX)),
        )
