"""EndpointAutoscaling: the scalable target, target-tracking policies and scheduled actions of an endpoint variant,
all from ``infra.config.AutoscalingSettings``.

- scalable target ``sagemaker:variant:DesiredInstanceCount`` with the stage's min/max; it depends on the endpoint
  (the variant must exist before it is registered);
- target tracking on ``SageMakerVariantInvocationsPerInstance`` (target set directly or measured RPS x safety x 60);
- optional target tracking on ``SageMakerVariantConcurrentRequestsPerModelHighResolution`` (10-second datapoints:
  scale-out in under a minute instead of three);
- scale-in / scale-out cooldowns and disable-scale-in on both policies;
- scheduled min/max changes (e.g. business hours vs nights), UTC.

Application Auto Scaling acts through its service-linked role for SageMaker, so no role is created here.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from constructs import Construct

from infra.config import AutoscalingSettings

INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"


class EndpointAutoscaling(Construct):
    """Autoscaling of one endpoint variant. Public: ``target`` (CfnScalableTarget), ``policies``, ``scheduled``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AutoscalingSettings,
        endpoint_name: str,
        variant_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = appscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            # GetAtt on the endpoint: registered only once the endpoint (and its variant) exists.
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
            scheduled_actions=[
                appscaling.CfnScalableTarget.ScheduledActionProperty(
                    scheduled_action_name=action.name,
                    schedule=action.schedule,
                    scalable_target_action=appscaling.CfnScalableTarget.ScalableTargetActionProperty(
                        min_capacity=action.min_capacity, max_capacity=action.max_capacity
                    ),
                )
                for action in settings.scheduled
            ]
            or None,
        )

        metrics: list[tuple[str, str, float]] = [
            ("Invocations", INVOCATIONS_METRIC, settings.invocations_target)
        ]
        if settings.concurrency_target is not None:
            metrics.append(("Concurrency", CONCURRENCY_METRIC, settings.concurrency_target))
        self.policies: list[appscaling.CfnScalingPolicy] = []
        for name, metric, target_value in metrics:
            policy = appscaling.CfnScalingPolicy(
                self,
                f"{name}Policy",
                # Application Auto Scaling requires a name (unique per scalable target); the stack prefix makes it
                # stage-unique too, so a policy or its TargetTracking-* alarms name their stage.
                policy_name=f"{cdk.Stack.of(self).stack_name}-{variant_name}-{name.lower()}",
                policy_type="TargetTrackingScaling",
                scaling_target_id=self.target.ref,
                target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                    target_value=target_value,
                    predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                        predefined_metric_type=metric
                    ),
                    scale_in_cooldown=settings.scale_in_cooldown_s,
                    scale_out_cooldown=settings.scale_out_cooldown_s,
                    disable_scale_in=settings.disable_scale_in,
                ),
            )
            self.policies.append(policy)
