"""TrainingRole: what a SageMaker training job of the stage may do - read datasets, write its output and
checkpoints, read earlier versions' models (pretrained starts), use the stage key, pull the train image, log and
publish metrics (and, in VPC mode, attach network interfaces). Public: ``role``.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app.contracts.storage import (
    CHECKPOINTS_PREFIX,
    MODELS_PREFIX,
    TRAINING_OUTPUT_PREFIX,
    TRAINING_READABLE_PREFIXES,
)
from infra.constructs.images import ContainerImage
from infra.constructs.sagemaker_roles import grant_sagemaker_logs, job_role_principal, log_group_arn
from infra.nag import acknowledge, acknowledge_resource


class TrainingRole(Construct):
    """The execution role the runner passes to every training job it starts."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        datasets_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        image: ContainerImage,
        vpc: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        # "Default": the role's logical ID stays the one it had as the stack's own "TrainingRole" child.
        role = self.role = iam.Role(
            self,
            "Default",
            assumed_by=job_role_principal(),
            description=f"{stage}: SageMaker training jobs started by the runner Lambda",
        )
        datasets_bucket.grant_read(role)
        artifacts_bucket.grant_read_write(role, f"{TRAINING_OUTPUT_PREFIX}*")
        artifacts_bucket.grant_read_write(role, f"{CHECKPOINTS_PREFIX}*")
        # Pretrained checkpoints of earlier versions. The launcher refuses a pretrained_uri outside
        # TRAINING_READABLE_PREFIXES, so what it accepts and what this role reads must stay the same set.
        artifacts_bucket.grant_read(role, f"{MODELS_PREFIX}*")
        # Encrypted training volumes: SageMaker creates a grant on the key for the instance.
        key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
        key.grant_encrypt_decrypt(role)
        image.grant_pull(role)
        log_groups = log_group_arn(self, "/aws/sagemaker/TrainingJobs:*")
        grant_sagemaker_logs(role, log_groups)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        if vpc:
            # VPC mode: SageMaker attaches ENIs in the configured subnets; EC2 supports no resource scoping here.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:CreateNetworkInterfacePermission",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DeleteNetworkInterfacePermission",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeDhcpOptions",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeSecurityGroups",
                    ],
                    resources=["*"],
                )
            )
        self._acknowledge(datasets_bucket, artifacts_bucket, log_groups)

    def _acknowledge(
        self, datasets_bucket: s3.IBucket, artifacts_bucket: s3.IBucket, log_groups: str
    ) -> None:
        role = self.role
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*"):
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                f"{action} comes from CDK's bucket grants: read-only on the datasets bucket, read/write "
                "only under this stage's training-output/ and checkpoints/ prefixes",
                applies_to=f"Action::{action}",
            )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                f"{action} comes from CDK's key grant and is scoped to this stage's data key only",
                applies_to=f"Action::{action}",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Resource '*' is for ecr:GetAuthorizationToken (ECR supports no resource scope), "
            "cloudwatch:PutMetricData (conditioned on the /aws/sagemaker/ namespace) and, in VPC mode, the "
            "EC2 network-interface actions SageMaker needs (no resource scope)",
            applies_to="Resource::*",
        )
        acknowledge_resource(
            role,
            "AwsSolutions-IAM5",
            "SageMaker training jobs write to per-job log streams inside this one log group",
            resource=log_groups,
        )
        reason = "object-level access is limited to this prefix of this stage's bucket"
        acknowledge_resource(
            role,
            "AwsSolutions-IAM5",
            "training reads every object of a dataset folder; the datasets bucket holds only datasets",
            resource=f"{datasets_bucket.bucket_arn}/*",
        )
        for prefix in TRAINING_READABLE_PREFIXES:
            acknowledge_resource(
                role,
                "AwsSolutions-IAM5",
                f"{prefix}: {reason}",
                resource=f"{artifacts_bucket.bucket_arn}/{prefix}*",
            )
