"""Stateful stack of a stage: the customer-managed KMS key, the datasets / artifacts / access-log buckets and the
ECR repositories of the dataprep, train and serve images.

Everything here holds data, so it lives apart from the stateless stacks: staging and prod retain it on delete and
turn on termination protection (``config.retain_data``); dev destroys it. Logical IDs are pinned (tests assert
them) so a refactor never replaces a bucket, key or repository.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app.contracts.storage import CHECKPOINTS_PREFIX, DATA_CAPTURE_PREFIX
from infra.config import StageConfig
from infra.constructs.secure_bucket import SecureBucket
from infra.nag import acknowledge

IMAGE_NAMES: tuple[str, ...] = ("dataprep", "train", "serve")
# scripts/promote_image.py tags every promoted image sha256-<digest> (immutable tags): that is what a stage pins.
PROMOTED_TAG_PATTERN = "sha256-*"
# "Images per repository" default quota (Amazon ECR service quotas,
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html, read 2026-11-30): a count rule that keeps
# this many images never expires one before the repository itself is full.
ECR_IMAGES_PER_REPOSITORY = 100_000


def _pin(construct: Construct, logical_id: str) -> None:
    """Give a stateful resource a fixed logical ID (a changed ID would replace it and lose its data)."""
    cfn = construct.node.default_child
    assert isinstance(cfn, cdk.CfnElement)
    cfn.override_logical_id(logical_id)


class StatefulStack(cdk.Stack):
    """KMS key, buckets and ECR repositories of one stage. Public attributes are what the other stacks use."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        kwargs.setdefault(
            "description", f"{config.name}: KMS key, data and artifact buckets, ECR repositories"
        )
        super().__init__(scope, construct_id, termination_protection=config.retain_data, **kwargs)
        retain = config.retain_data
        removal = cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY

        self.key: kms.Key = kms.Key(
            self,
            "Key",
            description=f"{config.name}: encrypts datasets, model artifacts, data capture and images",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=cdk.Duration.days(30 if retain else 7),
        )
        _pin(self.key, "DataKey")

        # S3 server access logging delivers only to SSE-S3 target buckets (SSE-KMS is not supported there).
        self.access_logs_bucket: s3.Bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=cdk.Duration.days(config.access_log_expiry_days),
                    noncurrent_version_expiration=cdk.Duration.days(config.noncurrent_version_expiry_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(
                        config.abort_incomplete_upload_days
                    ),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=not retain,
        )
        _pin(self.access_logs_bucket, "AccessLogsBucket")
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This is the server access log target itself; logging it into itself would loop, and its own "
            "reads are covered by CloudTrail data events where an account enables them.",
        )

        common: dict[str, Any] = {
            "key": self.key,
            "access_logs": self.access_logs_bucket,
            "noncurrent_version_expiry_days": config.noncurrent_version_expiry_days,
            "abort_incomplete_upload_days": config.abort_incomplete_upload_days,
            "retain": retain,
        }
        # EventBridge "Object Created" events start training when a dataset.json lands.
        datasets = SecureBucket(self, "Datasets", event_bridge=True, **common)
        self.datasets_bucket: s3.Bucket = datasets.bucket
        _pin(self.datasets_bucket, "DatasetsBucket")

        artifacts = SecureBucket(
            self,
            "Artifacts",
            extra_lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-checkpoints",
                    prefix=CHECKPOINTS_PREFIX,
                    expiration=cdk.Duration.days(config.checkpoint_expiry_days),
                ),
                s3.LifecycleRule(
                    id="expire-data-capture",
                    prefix=DATA_CAPTURE_PREFIX,
                    expiration=cdk.Duration.days(config.data_capture_expiry_days),
                ),
            ],
            **common,
        )
        self.artifacts_bucket: s3.Bucket = artifacts.bucket
        _pin(self.artifacts_bucket, "ArtifactsBucket")

        self.repositories: dict[str, ecr.Repository] = {}
        for name in IMAGE_NAMES:
            repository = ecr.Repository(
                self,
                f"{name.capitalize()}Repository",
                image_scan_on_push=True,
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                encryption=ecr.RepositoryEncryption.KMS,
                encryption_key=self.key,
                # ECR: "An image that matches the tagging requirements of a rule cannot be expired by a rule with a
                # lower priority" (Amazon ECR lifecycle policies, How lifecycle policies work,
                # https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html, read 2026-11-30).
                # So rule 1 holds every promoted image (a deployed or previous release's pin) out of rule 2's count.
                lifecycle_rules=[
                    ecr.LifecycleRule(
                        rule_priority=1,
                        description="never expire a promoted image (tag sha256-<digest>): releases pin them",
                        tag_status=ecr.TagStatus.TAGGED,
                        tag_pattern_list=[PROMOTED_TAG_PATTERN],
                        max_image_count=ECR_IMAGES_PER_REPOSITORY,
                    ),
                    ecr.LifecycleRule(
                        rule_priority=2,
                        description=f"keep the last {config.ecr_keep_images} other images",
                        max_image_count=config.ecr_keep_images,
                    ),
                ],
                removal_policy=removal,
                empty_on_delete=not retain,
            )
            _pin(repository, f"{name.capitalize()}Repository")
            self.repositories[name] = repository
            # Promotion scripts find the unnamed repositories through these outputs.
            cdk.CfnOutput(self, f"{name.capitalize()}RepositoryUri", value=repository.repository_uri)

        cdk.CfnOutput(self, "DatasetsBucketName", value=self.datasets_bucket.bucket_name)
        cdk.CfnOutput(self, "ArtifactsBucketName", value=self.artifacts_bucket.bucket_name)
