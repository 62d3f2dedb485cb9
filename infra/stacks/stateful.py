"""Stateful stack of a stage: the customer-managed KMS key, the datasets / artifacts / access-log buckets, the
ECR repositories of the dataprep, train and serve images, the model registry (model package group) and the record
of which release the stage runs, and the stage's serve image (the training and serving stacks both use it).

Everything here holds data, so it lives apart from the stateless stacks: staging and prod retain it on delete and
turn on termination protection (``config.retain_data``); dev destroys its datasets and repositories. The model
registry outlives every stack in every stage: the model package group, the artifacts bucket it points to (the model
store) and the key that encrypts it are always retained. Logical IDs are pinned (tests assert them) so a refactor
never replaces a bucket, key or repository.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from app.contracts.storage import (
    CHECKPOINTS_PREFIX,
    DATA_CAPTURE_PREFIX,
    MODELS_PREFIX,
    TRAINING_OUTPUT_PREFIX,
)
from infra.config import StageConfig
from infra.constructs import secure_bucket
from infra.constructs import training_names as names
from infra.constructs.images import ContainerImage, serve_build_args, serve_variant_build_args
from infra.constructs.secure_bucket import SecureBucket
from infra.nag import acknowledge
from infra.release_record import SERVE_VARIANTS, ServeVariant, serve_variant_output
from infra.stack_outputs import DataOutputs
from infra.stage_release import StageRelease, serve_variant

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

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        release: StageRelease | None = None,
        registry: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault(
            "description",
            f"{config.name}: KMS key, data and artifact buckets, ECR repositories, model registry",
        )
        super().__init__(scope, construct_id, termination_protection=config.retain_data, **kwargs)
        retain = config.retain_data
        # The registry stage (the first, where images are built and models registered): every later stage and every
        # release pins its images and reads its model store, so its repositories and access logs outlive its stack
        # even where the stage itself keeps nothing (dev): tearing down Dev must not break Staging and Prod.
        keep_registry = retain or registry
        registry_removal = cdk.RemovalPolicy.RETAIN if keep_registry else cdk.RemovalPolicy.DESTROY

        self.key: kms.Key = kms.Key(
            self,
            "Key",
            description=f"{config.name}: encrypts datasets, model artifacts, data capture and images",
            enable_key_rotation=True,
            # The model store (artifacts bucket) outlives the stack, so the key that decrypts it does too.
            removal_policy=cdk.RemovalPolicy.RETAIN,
            pending_window=cdk.Duration.days(30 if retain else 7),
        )
        _pin(self.key, "DataKey")

        # S3 server access logging delivers only to SSE-S3 target buckets (SSE-KMS is not supported there).
        self.access_logs_bucket: s3.Bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            **secure_bucket.BASELINE,
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
            removal_policy=registry_removal,
            auto_delete_objects=not keep_registry,
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
            # The model store: registered model versions point here, so it is retained in every stage.
            **{**common, "retain": True},
        )
        self.artifacts_bucket: s3.Bucket = artifacts.bucket
        _pin(self.artifacts_bucket, "ArtifactsBucket")
        # The bucket policy holds the TLS-only rule and the cross-account read grant of the later stages: retained
        # with the bucket, or deleting the stack would strip both from a bucket that stays.
        assert self.artifacts_bucket.policy is not None  # enforce_ssl creates it
        self.artifacts_bucket.policy.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        if keep_registry:  # the retained model store keeps logging into it: its delivery grant stays too
            assert self.access_logs_bucket.policy is not None
            self.access_logs_bucket.policy.apply_removal_policy(cdk.RemovalPolicy.RETAIN)

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
                removal_policy=registry_removal,
                empty_on_delete=not keep_registry,
            )
            _pin(repository, f"{name.capitalize()}Repository")
            self.repositories[name] = repository
            # Promotion scripts find the unnamed repositories through these outputs.
            cdk.CfnOutput(self, DataOutputs.repository_uri(name), value=repository.repository_uri)

        # The stage's serve image, defined once for both stateless stacks: the registrar records it in every model
        # version it registers, the endpoint runs it (a build has one asset, a release one pinned digest).
        self.serve_image = ContainerImage(
            self,
            "ServeImage",
            name="serve",
            pinned_uri=release.serve if release else config.images.serve,
            build_args=serve_build_args(config.endpoint.instance_type),
        )

        if registry:
            self._serve_variants(config, release)

        cdk.CfnOutput(self, DataOutputs.DATASETS_BUCKET_NAME, value=self.datasets_bucket.bucket_name)
        cdk.CfnOutput(self, DataOutputs.ARTIFACTS_BUCKET_NAME, value=self.artifacts_bucket.bucket_name)
        self._model_registry(config)
        if release is not None:
            self._share_with(release.model_readers)

    def _serve_variants(self, config: StageConfig, release: StageRelease | None) -> None:
        """The registry builds every serve variant once (cpu: slim, gpu: CUDA) whenever it builds its images, so a
        release takes each from this one build (``release create``), never from an earlier record; running a
        release, it names the release's digests. One output per variant."""
        own = serve_variant(config.endpoint.instance_type)
        pinned = dict(release.serve_variants) if release else {}
        builds = release is None or release.serve is None
        self.serve_variant_images: dict[ServeVariant, str] = {}
        for variant in SERVE_VARIANTS:
            if variant == own:
                uri = self.serve_image.image_uri
            elif builds:
                uri = ContainerImage(
                    self,
                    f"Serve{variant.capitalize()}Image",
                    name="serve",
                    pinned_uri=None,
                    build_args=serve_variant_build_args(variant),
                ).image_uri
            elif variant in pinned:
                uri = pinned[variant]
            else:
                continue
            self.serve_variant_images[variant] = uri
            cdk.CfnOutput(self, serve_variant_output(variant), value=uri)

    def _model_registry(self, config: StageConfig) -> None:
        """The stage's model package group: retained, so the approval history (what went to Prod) outlives stacks.

        CloudFormation requires a name for the group; a retained group keeps its name, so a stack created again
        would collide with it. The name carries the first block of this stack's id (new for every creation).
        """
        # self.stack_id (scoped, unlike cdk.Aws.STACK_ID): other stacks that use the name import this stack's id.
        stack_suffix = cdk.Fn.select(0, cdk.Fn.split("-", cdk.Fn.select(2, cdk.Fn.split("/", self.stack_id))))
        self.model_package_group_name: str = cdk.Fn.join(
            "", [names.model_package_group_name(config.name), "-", stack_suffix]
        )
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=self.model_package_group_name,
            model_package_group_description=f"{config.name}: YOLO detector versions, one per completed training job",
        )
        self.model_package_group.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.model_package_group.override_logical_id("ModelPackageGroup")
        cdk.CfnOutput(self, DataOutputs.MODEL_PACKAGE_GROUP_NAME, value=self.model_package_group_name)

    def _share_with(self, accounts: tuple[str, ...]) -> None:
        """Let other accounts (later stages, the pipeline) read the model store, its key and the images.

        Cross-account access needs both sides: these resource policies here, and an identity policy on the reading
        role in the other account (the endpoint role reads exactly the release's object). IAM User Guide, "Cross
        account resource access in IAM", https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies-cross-account-resource-access.html
        (read 2026-11-30).
        """
        if not accounts:
            return
        principals: list[iam.IPrincipal] = [iam.AccountPrincipal(account) for account in accounts]
        self.artifacts_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ReleaseReadersGetModels",
                principals=principals,
                actions=["s3:GetObject"],
                resources=[
                    self.artifacts_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                    self.artifacts_bucket.arn_for_objects(f"{TRAINING_OUTPUT_PREFIX}*"),
                ],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ReleaseReadersDecryptViaS3AndEcr",
                principals=principals,
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": [
                            f"s3.{cdk.Aws.REGION}.amazonaws.com",
                            f"ecr.{cdk.Aws.REGION}.amazonaws.com",
                        ]
                    }
                },
            )
        )
        for repository in self.repositories.values():
            repository.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="ReleaseReadersPull",
                    principals=principals,
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:DescribeImages",
                        # the pipeline's preflight reads who may pull (scripts/lib/image_access.py)
                        "ecr:GetRepositoryPolicy",
                    ],
                )
            )
        # The pipeline's preflight reads the package's approval status across accounts.
        self.model_package_group.model_package_group_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReleaseReadersDescribePackages",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:{cdk.Aws.PARTITION}:iam::{a}:root" for a in accounts]},
                    "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                    "Resource": [
                        # by name, not GetAtt: a resource cannot reference its own attribute
                        self.format_arn(
                            service="sagemaker",
                            resource="model-package-group",
                            resource_name=self.model_package_group_name,
                        ),
                        self.format_arn(
                            service="sagemaker",
                            resource="model-package",
                            resource_name=f"{self.model_package_group_name}/*",
                        ),
                    ],
                }
            ],
        }
