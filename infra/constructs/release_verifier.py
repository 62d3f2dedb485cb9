"""ReleaseVerifierRole: what the release pipeline's gates may do in one stage's account (read-only, plus invoking the
stage's endpoint for the smoke and load checks). Assumed by the pipeline account; its ARN is a stack output that the
pipeline's post-deploy step reads (``env_from_cfn_outputs``), so the role needs no physical name.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge, acknowledge_resource


class ReleaseVerifierRole(Construct):
    """Public: ``role``, ``output`` (the CfnOutput with its ARN)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        pipeline_account: str,
        endpoint_arn: str,
        release_parameter_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.AccountPrincipal(pipeline_account),
            description=f"{stage}: release pipeline gates (describe, invoke the endpoint, read quotas)",
            max_session_duration=cdk.Duration.hours(2),
        )
        configs = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
        models = stack.format_arn(service="sagemaker", resource="model", resource_name="*")
        stacks = stack.format_arn(service="cloudformation", resource="stack", resource_name=f"{stage}-*/*")
        parameter = stack.format_arn(
            service="ssm", resource="parameter", resource_name=release_parameter_name.lstrip("/")
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"], resources=[endpoint_arn]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                resources=[configs, models],
            )
        )
        self.role.add_to_policy(
            # UpdateTerminationProtection: verify turns it on after the deploy (CDK Pipelines ignores it)
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:UpdateTerminationProtection"],
                resources=[stacks],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                # verify appends a passed release to the stage's history (scripts/release/checks.py record_release)
                actions=["ssm:GetParameter", "ssm:GetParameterHistory", "ssm:PutParameter"],
                resources=[parameter],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["servicequotas:ListServiceQuotas", "servicequotas:GetServiceQuota"], resources=["*"]
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Service Quotas list/get actions are read-only and support no resource scope for a service's list",
            applies_to="Resource::*",
        )
        for resource, why in (
            (
                configs,
                "endpoint configs are named by CloudFormation and retained per release; read-only describe",
            ),
            (models, "models are named by CloudFormation and retained per release; read-only describe"),
            (
                stacks,
                "DescribeStacks and turning termination protection on (never off) for this stage's own stacks, "
                "whose ids CloudFormation assigns",
            ),
        ):
            acknowledge_resource(self.role, "AwsSolutions-IAM5", why, resource=resource)
        self.output = cdk.CfnOutput(scope, "ReleaseVerifierRoleArn", value=self.role.role_arn)
