"""CloudWatch Logs permissions of a SageMaker execution role (training, processing, hosting): the actions SageMaker
uses to ship a container's stdout, scoped to the log groups of one job or endpoint family."""

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
