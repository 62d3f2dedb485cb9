"""ServingDashboard: one CloudWatch dashboard per stage.

Rows: invocations (vs the scaling target), latency (vs the alarm thresholds), errors, instances serving traffic (vs
the scaling bounds; Invocations / InvocationsPerInstance, see infra/constructs/monitoring.py), utilisation, and the training jobs' train / val losses (the SageMaker metric names of
``app.contracts.metrics.METRICS`` in ``/aws/sagemaker/TrainingJobs``, found by SEARCH because job names vary, and
filtered to this stage's job-name prefix so stages sharing an account do not see each other's jobs). A
stage without an endpoint gets the training rows only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from app.contracts.metrics import MODEL_METRICS, TRAIN_LOSSES, VAL_LOSSES
from infra.config import EndpointSettings
from infra.constructs.monitoring import INSTANCE_NS, SAGEMAKER_NS, serving_instances, vcpus
from infra.constructs.training_names import job_name_prefix

TRAINING_NS = "/aws/sagemaker/TrainingJobs"
WIDTH = 8


@dataclass(frozen=True)
class EndpointRef:
    """What the dashboard needs of a deployed endpoint."""

    endpoint_name: str
    variant_name: str


def _line(value: float, label: str) -> cloudwatch.HorizontalAnnotation:
    return cloudwatch.HorizontalAnnotation(value=value, label=label)


def training_search_expression(metric_name: str, stage: str) -> str:
    """SEARCH for ``metric_name`` of this stage's training jobs only. Their ``Host`` dimension is
    ``<job name>/algo-1`` and every job name starts with the stage prefix (the one the training stack uses);
    SEARCH has no prefix operator, so every token of the prefix must match a token of Host (a partial match)."""
    tokens = re.findall(r"[A-Za-z0-9]+", job_name_prefix(stage))
    host = " ".join(f"Host={token}" for token in tokens)
    return f"SEARCH('{{\"{TRAINING_NS}\",Host}} MetricName=\"{metric_name}\" {host}', 'Average', 60)"


def _training_search(metric_name: str, stage: str) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        expression=training_search_expression(metric_name, stage),
        using_metrics={},
        label=metric_name,
        period=cdk.Duration.minutes(1),
    )


class ServingDashboard(Construct):
    """Public: ``dashboard``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        settings: EndpointSettings,
        endpoint: EndpointRef | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=cdk.Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {stage}: serving" + ("" if endpoint else " (no endpoint: no model version yet)"),
                width=24,
                height=1,
            )
        )
        if endpoint is not None:
            self.dashboard.add_widgets(*self._endpoint_rows(settings, endpoint))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Training: train loss",
                left=[_training_search(m.name, stage) for m in TRAIN_LOSSES],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Training: val loss",
                left=[_training_search(m.name, stage) for m in VAL_LOSSES],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Training: val quality",
                left=[_training_search(m.name, stage) for m in MODEL_METRICS],
                width=WIDTH,
            ),
        )

    @staticmethod
    def _endpoint_rows(settings: EndpointSettings, endpoint: EndpointRef) -> list[cloudwatch.IWidget]:
        dims = {"EndpointName": endpoint.endpoint_name, "VariantName": endpoint.variant_name}
        minute = cdk.Duration.minutes(1)

        def m(
            name: str, stat: str, namespace: str = SAGEMAKER_NS, label: str | None = None
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dims,
                statistic=stat,
                period=minute,
                label=label or f"{name} {stat}",
            )

        alarms, scaling = settings.alarms, settings.autoscaling
        return [
            cloudwatch.GraphWidget(
                title="Invocations per instance (per minute) vs scaling target",
                left=[m("InvocationsPerInstance", "Sum")],
                right=[m("Invocations", "Sum")],
                left_annotations=[_line(scaling.invocations_target, "target")],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Latency (us)",
                left=[
                    m("ModelLatency", "p50"),
                    m("ModelLatency", "p90"),
                    m("ModelLatency", "p99"),
                    m("OverheadLatency", "p99"),
                ],
                left_annotations=[
                    _line(alarms.model_latency_p90_ms * 1000, "p90 alarm"),
                    _line(alarms.model_latency_p99_ms * 1000, "p99 alarm"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                # ModelSetupTime is a serverless-endpoint metric: a real-time variant never publishes it.
                left=[m("Invocation4XXErrors", "Sum"), m("Invocation5XXErrors", "Sum")],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Instances serving traffic vs scaling bounds (no data without traffic)",
                left=[serving_instances(dims, minute)],
                left_annotations=[_line(scaling.min_capacity, "min"), _line(scaling.max_capacity, "max")],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title=f"CPU (% summed over {vcpus(settings.instance_type)} vCPUs)",
                left=[
                    m("CPUUtilization", "Average", INSTANCE_NS),
                    m("CPUUtilization", "Maximum", INSTANCE_NS),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Memory, disk, GPU (%)",
                left=[
                    m("MemoryUtilization", "Average", INSTANCE_NS),
                    m("DiskUtilization", "Average", INSTANCE_NS),
                    m("GPUUtilization", "Average", INSTANCE_NS),
                    m("GPUMemoryUtilization", "Average", INSTANCE_NS),
                ],
                width=WIDTH,
            ),
        ]
