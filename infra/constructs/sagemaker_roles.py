"""What the platform's SageMaker execution roles (training, processing, hosting) share: the service principal that
assumes a job role, and the CloudWatch Logs actions SageMaker uses to ship a container's stdout, scoped to the log
groups of one job or endpoint family."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct

LOG_ACTIONS: tuple[str, ...] = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
)


def job_role_principal() -> iam.ServicePrincipal:
    """SageMaker, only on behalf of this account: the ``aws:SourceAccount`` condition SageMaker's confused-deputy
    guidance recommends for the roles of training and processing jobs ("Cross-service confused deputy prevention",
    https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html, read 2026-11-30)."""
    return iam.ServicePrincipal(
        "sagemaker.amazonaws.com",
        conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
    )


def log_group_arn(scope: IConstruct, name_pattern: str) -> str:
    """``arn:...:logs:<region>:<account>:log-group:<name_pattern>`` in ``scope``'s stack."""
    return cdk.Stack.of(scope).format_arn(
        service="logs",
        resource="log-group",
        resource_name=name_pattern,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def grant_sagemaker_logs(role: iam.IRole, *resources: str) -> None:
    """Let ``role`` create and write the log groups/streams in ``resources`` (ARNs from ``log_group_arn``)."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(LOG_ACTIONS), resources=list(resources)))
