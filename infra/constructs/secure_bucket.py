"""SecureBucket: an S3 bucket with the platform's baseline (no public access, TLS only, SSE-KMS with the stage
key, versioning, lifecycle for old versions and abandoned uploads, server access logs) and no physical name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

# What every bucket of the platform has, whatever its encryption: no public access, no ACLs, TLS 1.2+ only, versions.
BASELINE: dict[str, Any] = {
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    "enforce_ssl": True,
    "minimum_tls_version": 1.2,
    "versioned": True,
}


class SecureBucket(Construct):
    """A versioned, KMS-encrypted, TLS-only bucket whose server access logs go to ``access_logs``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        access_logs: s3.IBucket,
        noncurrent_version_expiry_days: int,
        abort_incomplete_upload_days: int,
        retain: bool,
        event_bridge: bool = False,
        extra_lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # fewer KMS calls (and cost) for many small objects like YOLO labels
            **BASELINE,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-and-abort-uploads",
                    noncurrent_version_expiration=cdk.Duration.days(noncurrent_version_expiry_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(abort_incomplete_upload_days),
                    expired_object_delete_marker=True,
                ),
                *extra_lifecycle_rules,
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{construct_id}/",
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
        if event_bridge:
            # Native CloudFormation property: unlike Bucket(event_bridge_enabled=True) it needs no custom-resource
            # Lambda (one less role, function and set of nag findings).
            cfn = self.bucket.node.default_child
            assert isinstance(cfn, s3.CfnBucket)
            cfn.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )
