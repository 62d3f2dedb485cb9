"""Alarms of a stage's endpoint and the SNS topic they notify.

``AlarmTopic``: KMS-encrypted (its own key, which CloudWatch may use), TLS-only, e-mail subscriptions from config.
``EndpointAlarms``: 5XX and 4XX error rates, model latency p90/p99, overhead latency p99, CPU / memory / disk (and
GPU on GPU instances) utilisation, and capacity pinned at the configured maximum for too long. The ones in
``ROLLBACK`` guard deployments: the endpoint's blue/green update rolls back when one fires.

Only the rollback alarms have physical names (``<stack>-<purpose>``, so stage-unique): the endpoint refers to them by
name while they refer to the endpoint, and references both ways would be a cycle. The others are named by
CloudFormation.

Instances serving traffic: SageMaker publishes no instance-count metric for a real-time variant; CPUUtilization's
sample count is not documented to equal it. ``InvocationsPerInstance`` is documented as "1/numberOfInstances is sent
as the value on each request" (SageMaker API reference, ScalingPolicyMetric, and "SageMaker AI endpoint invocation
metrics", https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html, read 2026-11-30), so
Sum(Invocations) / Sum(InvocationsPerInstance) over a minute is the number of instances that served it. No traffic,
no datapoint: the capacity-at-max alarm treats that as not breaching (nothing is pinned at max without load).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app.contracts import instance_types
from infra.config import AlarmSettings, ScheduledCapacity
from infra.max_in_force import max_in_force_expression, windows_summary
from infra.nag import acknowledge

SAGEMAKER_NS = "AWS/SageMaker"  # invocations, errors, latency
INSTANCE_NS = "/aws/sagemaker/Endpoints"  # per-instance utilisation
ROLLBACK: frozenset[str] = frozenset({"error-5xx-rate", "model-latency-p90", "model-latency-p99"})


def serving_instances(
    dims: dict[str, str], period: cdk.Duration, label: str = "instances serving traffic"
) -> cloudwatch.MathExpression:
    """Instances that served the period's requests: Sum(Invocations) / Sum(InvocationsPerInstance) (see above)."""

    def metric(name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=SAGEMAKER_NS, metric_name=name, dimensions_map=dims, statistic="Sum", period=period
        )

    return cloudwatch.MathExpression(
        expression="invocations / perinstance",
        using_metrics={"invocations": metric("Invocations"), "perinstance": metric("InvocationsPerInstance")},
        period=period,
        label=label,
    )


def vcpus(instance_type: str) -> int:
    """vCPUs of an instance size (large 2, xlarge 4, Nxlarge 4N): SageMaker's CPUUtilization sums its cores."""
    size = instance_type.rsplit(".", 1)[-1]
    if size.endswith("xlarge"):
        return 4 * int(size.removesuffix("xlarge") or 1)
    return 2


def any_occurrence_alarm(
    scope: Construct, construct_id: str, *, description: str, metric: cloudwatch.IMetric
) -> cloudwatch.Alarm:
    """An alarm that fires on one occurrence in a period (an error, a failed job, a dead letter); no data is no
    occurrence."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=metric,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


@dataclass(frozen=True)
class TopicPublisher:
    """The AWS service that publishes to an AlarmTopic, and the condition its use of the topic's key carries."""

    service: str
    label: str
    # False: whoever makes the topic the service's target grants the key (CDK's notification-rule target does)
    key_statement: bool = True


CLOUDWATCH_ALARMS = TopicPublisher("cloudwatch.amazonaws.com", "CloudWatch alarms")


class AlarmTopic(Construct):
    """An SNS topic that CloudWatch alarms (or another AWS service, ``publisher``) publish to, with its own key.
    Public: ``topic``, ``key``.

    Its own key, not the stage's data key: the key policy must let the publisher use it, and that statement belongs
    with the topic, not in the stateful stack's key policy. E-mail deliveries that fail go to ``dead_letters``
    where given."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        display_name: str,
        purpose: str,
        emails: tuple[str, ...],
        retain: bool,
        dead_letters: sqs.IQueue | None = None,
        publisher: TopicPublisher = CLOUDWATCH_ALARMS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts {purpose} ({publisher.label} publish to it)",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        # A service publishes to an encrypted topic only when the key lets it (SNS calls KMS on its behalf).
        if publisher.key_statement:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    principals=[iam.ServicePrincipal(publisher.service)],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
                )
            )
        self.topic = sns.Topic(
            self, "Topic", master_key=self.key, enforce_ssl=True, display_name=display_name
        )
        for email in emails:
            subscription = self.topic.add_subscription(
                subscriptions.EmailSubscription(email, dead_letter_queue=dead_letters)
            )
            if dead_letters is not None:
                continue
            acknowledge(
                subscription,
                "Serverless-SNSRedrivePolicy",
                "An e-mail notification that cannot be delivered loses nothing: the alarm state and its history "
                "stay in CloudWatch, and SNS retries e-mail delivery itself.",
            )


@dataclass(frozen=True)
class _Spec:
    purpose: str
    description: str
    metric: cloudwatch.IMetric
    threshold: float
    periods: int


def _capacity_at_max(
    dims: dict[str, str],
    period: cdk.Duration,
    max_capacity: int,
    scheduled: Sequence[ScheduledCapacity],
    minutes: int,
) -> _Spec:
    """Instances serving traffic at the max capacity in force. With scheduled windows of different maxima (e.g.
    nights lower than days) the alarm compares against each window's max (infra/max_in_force.py says how and why)."""
    instances = serving_instances(dims, period)
    advice = f"for {minutes} min: raise max or the target"
    if len({a.max_capacity for a in scheduled} | {max_capacity}) == 1:
        return _Spec(
            "capacity-at-max",
            f"instances serving traffic (Invocations / InvocationsPerInstance) at max capacity ({max_capacity}) {advice}",
            instances,
            max_capacity - 0.5,
            minutes,
        )
    in_force = max_in_force_expression("instances", scheduled, max_capacity)
    return _Spec(
        "capacity-at-max",
        "instances serving traffic (Invocations / InvocationsPerInstance) minus the max capacity in force "
        f"(scheduled: {windows_summary(scheduled)}; UTC) {advice}",
        cloudwatch.MathExpression(
            expression=f"instances - {in_force}",
            using_metrics={"instances": instances},
            period=period,
            label="instances serving traffic minus the max in force",
        ),
        -0.5,
        minutes,
    )


class EndpointAlarms(Construct):
    """Alarms on one endpoint variant, all notifying ``topic``. Public: ``alarms`` (purpose -> Alarm),
    ``rollback_alarm_names`` (what the endpoint's auto-rollback watches)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AlarmSettings,
        endpoint_name: str,
        variant_name: str,
        instance_type: str,
        max_capacity: int,
        topic: sns.ITopic,
        scheduled: Sequence[ScheduledCapacity] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        dims = {"EndpointName": endpoint_name, "VariantName": variant_name}
        minute = cdk.Duration.minutes(1)

        def metric(name: str, stat: str, namespace: str = SAGEMAKER_NS) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace, metric_name=name, dimensions_map=dims, statistic=stat, period=minute
            )

        def rate(errors: str) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(
                expression="100 * errors / invocations",
                using_metrics={"errors": metric(errors, "Sum"), "invocations": metric("Invocations", "Sum")},
                period=minute,
                label=f"{errors} rate (%)",
            )

        n = settings.evaluation_periods
        specs = [
            _Spec(
                "error-5xx-rate",
                "5XX responses (% of invocations)",
                rate("Invocation5XXErrors"),
                settings.error_5xx_rate_percent,
                n,
            ),
            _Spec(
                "error-4xx-rate",
                "4XX responses (% of invocations)",
                rate("Invocation4XXErrors"),
                settings.error_4xx_rate_percent,
                n,
            ),
            # Latencies are reported in microseconds.
            _Spec(
                "model-latency-p90",
                "ModelLatency p90 (us)",
                metric("ModelLatency", "p90"),
                settings.model_latency_p90_ms * 1000,
                n,
            ),
            _Spec(
                "model-latency-p99",
                "ModelLatency p99 (us)",
                metric("ModelLatency", "p99"),
                settings.model_latency_p99_ms * 1000,
                n,
            ),
            _Spec(
                "overhead-latency-p99",
                "OverheadLatency p99 (us)",
                metric("OverheadLatency", "p99"),
                settings.overhead_latency_p99_ms * 1000,
                n,
            ),
            _Spec(
                "cpu-utilization",
                f"CPUUtilization, summed over {vcpus(instance_type)} vCPUs (%)",
                metric("CPUUtilization", "Average", INSTANCE_NS),
                settings.cpu_utilization_percent * vcpus(instance_type),
                n,
            ),
            _Spec(
                "memory-utilization",
                "MemoryUtilization (%)",
                metric("MemoryUtilization", "Average", INSTANCE_NS),
                settings.memory_utilization_percent,
                n,
            ),
            _Spec(
                "disk-utilization",
                "DiskUtilization (%)",
                metric("DiskUtilization", "Average", INSTANCE_NS),
                settings.disk_utilization_percent,
                n,
            ),
            _capacity_at_max(dims, minute, max_capacity, scheduled, settings.at_max_capacity_minutes),
        ]
        if instance_types.is_gpu(instance_type):
            specs.append(
                _Spec(
                    "gpu-utilization",
                    "GPUUtilization (%)",
                    metric("GPUUtilization", "Average", INSTANCE_NS),
                    settings.gpu_utilization_percent,
                    n,
                )
            )

        stack_name = cdk.Stack.of(self).stack_name
        action = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for spec in specs:
            alarm = cloudwatch.Alarm(
                self,
                spec.purpose,
                alarm_name=f"{stack_name}-{spec.purpose}" if spec.purpose in ROLLBACK else None,
                alarm_description=f"{spec.description} > {spec.threshold:g} for {spec.periods} min",
                metric=spec.metric,
                threshold=spec.threshold,
                evaluation_periods=spec.periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[spec.purpose] = alarm
        self.rollback_alarm_names: list[str] = [
            f"{stack_name}-{purpose}" for purpose in sorted(self.alarms) if purpose in ROLLBACK
        ]
