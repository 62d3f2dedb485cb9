"""DataprepJob: what a SageMaker Processing job of the data-prep container needs (the image and its execution role).

The dataprep image (``containers/dataprep``, or the stage's pinned ``images.dataprep`` digest) runs
``python -m app.dataprep.processing``. Its role reads the stage's datasets bucket (labels and images under ``raw/``,
and the datasets it writes: it checks ``--out`` before writing) and the stage's ``label_sources`` (exactly those
prefixes, plus kms:Decrypt on their keys when given), and writes datasets under any prefix of the datasets bucket but
``raw/`` (never over raw data). ``scripts/dataprep_job.py``
starts jobs with it, found through the Training stack's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app.contracts.storage import RAW_PREFIX, S3Uri
from infra.config import LabelSource
from infra.constructs.images import ContainerImage
from infra.constructs.sagemaker_roles import grant_sagemaker_logs, job_role_principal, log_group_arn
from infra.nag import acknowledge, acknowledge_resource

PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


class DataprepJob(Construct):
    """Public: ``image`` (``image.image_uri``) and ``role``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        pinned_uri: str | None,
        datasets_bucket: s3.IBucket,
        key: kms.IKey,
        label_sources: Sequence[LabelSource] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.image = ContainerImage(self, "Image", name="dataprep", pinned_uri=pinned_uri)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=job_role_principal(),
            description=f"{stage}: SageMaker Processing jobs of the dataprep image (scripts/dataprep_job.py)",
        )
        raw = f"{datasets_bucket.bucket_arn}/{RAW_PREFIX}*"
        # Reads raw/ (the labels) and the datasets it writes: before writing, app/dataprep/out_check.py reads the
        # --out prefix's dataset.json and lists its files, and --out is any prefix outside raw/ (chosen per run).
        # GetObject (Amazon S3 API Reference): "You need the s3:GetObject permission for this operation"; without it
        # S3 answers AccessDenied whether or not dataset.json exists, and every job would fail there.
        datasets_bucket.grant_read(self.role, "*")
        datasets_bucket.grant_put(self.role, "*")
        # Datasets go anywhere but raw/: a wrong --out must not overwrite the labelled source data.
        self.role.add_to_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY, actions=["s3:PutObject*", "s3:DeleteObject*"], resources=[raw]
            )
        )
        key.grant_encrypt_decrypt(self.role)
        key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")  # encrypted processing volumes
        self.label_reads = self._grant_label_sources(label_sources)
        self.image.grant_pull(self.role)
        self.log_groups = log_group_arn(self, f"{PROCESSING_LOG_GROUP}:*")
        grant_sagemaker_logs(self.role, self.log_groups)
        self._acknowledge(datasets_bucket, raw)

    def _grant_label_sources(self, sources: Sequence[LabelSource]) -> list[str]:
        """Read exactly the configured prefixes (objects) and list only under them; decrypt with their keys.

        Listing a prefix (YOLO folders) needs s3:ListBucket on the bucket with an s3:prefix condition: "Actions,
        resources, and condition keys for Amazon S3", s3:prefix
        (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html). Reading SSE-KMS
        objects needs kms:Decrypt on their key: "Using server-side encryption with AWS KMS keys (SSE-KMS)", Amazon S3
        User Guide (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
        """
        objects: list[str] = []
        for source in sources:
            loc = S3Uri.parse(source.uri)
            bucket_arn = f"arn:{Aws.PARTITION}:s3:::{loc.bucket}"
            objects.append(f"{bucket_arn}/{loc.key}*")
            self.role.add_to_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{loc.key}*"])
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{loc.key}*"]}},
                )
            )
            if source.kms_key_arn:
                self.role.add_to_policy(
                    iam.PolicyStatement(actions=["kms:Decrypt"], resources=[source.kms_key_arn])
                )
        return objects

    def _acknowledge(self, datasets_bucket: s3.IBucket, raw: str) -> None:
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*"):
            acknowledge(
                self.role,
                "AwsSolutions-IAM5",
                f"{action} comes from CDK's bucket grants on this stage's datasets bucket only: read under raw/, "
                "multipart-upload cleanup of the dataset objects the job writes",
                applies_to=f"Action::{action}",
            )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                self.role,
                "AwsSolutions-IAM5",
                f"{action} comes from CDK's key grant and is scoped to this stage's data key only",
                applies_to=f"Action::{action}",
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Resource '*' is ecr:GetAuthorizationToken, which ECR supports on '*' only (pulling the dataprep "
            "image itself is scoped to its repository)",
            applies_to="Resource::*",
        )
        acknowledge_resource(
            self.role,
            "AwsSolutions-IAM5",
            "SageMaker Processing jobs write to per-job log streams inside this one log group",
            resource=self.log_groups,
        )
        acknowledge_resource(
            self.role,
            "AwsSolutions-IAM5",
            "dataprep reads every manifest and image of a labelling job; raw/ holds only raw labelled data",
            resource=raw,
        )
        acknowledge_resource(
            self.role,
            "AwsSolutions-IAM5",
            "a dataset's prefix is chosen per run (--out); writes under raw/ are denied explicitly",
            resource=f"{datasets_bucket.bucket_arn}/*",
        )
        for resource in self.label_reads:
            acknowledge_resource(
                self.role,
                "AwsSolutions-IAM5",
                "a label source of this stage (label_sources): data prep reads every label file and image under "
                "that prefix and nothing else",
                resource=resource,
            )
