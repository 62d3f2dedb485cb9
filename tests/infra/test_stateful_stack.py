"""The stateful stack of every stage: key, buckets and repositories carry the security baseline and the stage's
retention; their logical IDs are pinned (a change would replace them and lose data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.config import load_stage
from infra.stacks.stateful import ECR_IMAGES_PER_REPOSITORY
from infra.stages import STAGES
from tests.infra.synthesized import EXAMPLE_RELEASE, SynthesizedApp

STAGE_NAMES = list(STAGES)
KMS_BUCKETS = ("DatasetsBucket", "ArtifactsBucket")
ALL_BUCKETS = (*KMS_BUCKETS, "AccessLogsBucket")
REPOSITORIES = ("DataprepRepository", "TrainRepository", "ServeRepository")
PINNED_LOGICAL_IDS = {"DataKey", *ALL_BUCKETS, *REPOSITORIES, "ModelPackageGroup"}


def _resources(synth: SynthesizedApp, stage: str) -> dict[str, Any]:
    resources: dict[str, Any] = synth.template_json(stage, "Data")["Resources"]
    return resources


def _props(synth: SynthesizedApp, stage: str, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = _resources(synth, stage)[logical_id]["Properties"]
    return props


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_stateful_logical_ids_are_pinned(synth: SynthesizedApp, stage: str) -> None:
    stateful_types = {
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::ECR::Repository",
        "AWS::SageMaker::ModelPackageGroup",
    }
    found = {lid for lid, r in _resources(synth, stage).items() if r["Type"] in stateful_types}
    assert found == PINNED_LOGICAL_IDS


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_key_is_customer_managed_with_rotation(synth: SynthesizedApp, stage: str) -> None:
    synth.template(stage, "Data").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_bucket_blocks_public_access_and_versions(synth: SynthesizedApp, stage: str, bucket: str) -> None:
    props = _props(synth, stage, bucket)
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("bucket", KMS_BUCKETS)
def test_data_bucket_uses_sse_kms_with_stage_key_and_logs_access(
    synth: SynthesizedApp, stage: str, bucket: str
) -> None:
    props = _props(synth, stage, bucket)
    default = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]}}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_access_log_bucket_uses_sse_s3_as_log_delivery_requires(synth: SynthesizedApp, stage: str) -> None:
    props = _props(synth, stage, "AccessLogsBucket")
    default = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    assert default == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_bucket_policy_denies_plain_http_and_old_tls(synth: SynthesizedApp, stage: str, bucket: str) -> None:
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in _resources(synth, stage).values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    assert len(policies) == 1
    denies = [s for s in policies[0] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert any(s["Condition"] == {"NumericLessThan": {"s3:TlsVersion": 1.2}} for s in denies)


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_bucket_lifecycle_expires_noncurrent_and_aborts_uploads(
    synth: SynthesizedApp, stage: str, bucket: str
) -> None:
    config = load_stage(stage, STAGES[stage])
    rules = _props(synth, stage, bucket)["LifecycleConfiguration"]["Rules"]
    assert any(
        r.get("NoncurrentVersionExpiration") == {"NoncurrentDays": config.noncurrent_version_expiry_days}
        and r.get("AbortIncompleteMultipartUpload")
        == {"DaysAfterInitiation": config.abort_incomplete_upload_days}
        and "Prefix" not in r
        for r in rules
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_artifacts_bucket_expires_checkpoints_and_data_capture_by_prefix(
    synth: SynthesizedApp, stage: str
) -> None:
    config = load_stage(stage, STAGES[stage])
    rules = {
        r.get("Prefix"): r for r in _props(synth, stage, "ArtifactsBucket")["LifecycleConfiguration"]["Rules"]
    }
    assert rules["checkpoints/"]["ExpirationInDays"] == config.checkpoint_expiry_days
    assert rules["data-capture/"]["ExpirationInDays"] == config.data_capture_expiry_days


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_datasets_bucket_sends_eventbridge_notifications(synth: SynthesizedApp, stage: str) -> None:
    props = _props(synth, stage, "DatasetsBucket")
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("repository", REPOSITORIES)
def test_repository_scans_is_immutable_kms_encrypted_and_keeps_last_n(
    synth: SynthesizedApp, stage: str, repository: str
) -> None:
    config = load_stage(stage, STAGES[stage])
    props = _props(synth, stage, repository)
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["EncryptionConfiguration"] == {
        "EncryptionType": "KMS",
        "KmsKey": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
    promoted, rest = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rest["selection"]["countType"] == "imageCountMoreThan"
    assert rest["selection"]["countNumber"] == config.ecr_keep_images
    assert rest["rulePriority"] > promoted["rulePriority"]


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("repository", REPOSITORIES)
def test_promoted_images_are_held_out_of_the_keep_last_n_rule(
    synth: SynthesizedApp, stage: str, repository: str
) -> None:
    """ECR: an image matched by a higher-priority rule cannot be expired by a lower one; promote_image tags
    sha256-<digest>, so every image a release pins is matched by rule 1, which keeps up to the repository quota."""
    rules = json.loads(_props(synth, stage, repository)["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    first = min(rules, key=lambda r: r["rulePriority"])
    assert first["selection"]["tagStatus"] == "tagged"
    assert first["selection"]["tagPatternList"] == ["sha256-*"]
    assert first["selection"]["countNumber"] == ECR_IMAGES_PER_REPOSITORY


MODEL_STORE = {"DataKey", "ArtifactsBucket", "ModelPackageGroup"}  # outlive every stack, in every stage


# The registry stage (Dev, the first) keeps what every release uses even though Dev keeps no data (issue 22).
REGISTRY = {*REPOSITORIES, "AccessLogsBucket"}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_retention_follows_stage_config(synth: SynthesizedApp, stage: str) -> None:
    retain = load_stage(stage, STAGES[stage]).retain_data
    resources = _resources(synth, stage)
    expected = "Retain" if retain else "Delete"
    assert {resources[lid]["DeletionPolicy"] for lid in PINNED_LOGICAL_IDS - MODEL_STORE - REGISTRY} == {
        expected
    }
    auto_delete = [lid for lid, r in resources.items() if r["Type"] == "Custom::S3AutoDeleteObjects"]
    assert len(auto_delete) == (0 if retain else len(ALL_BUCKETS) - 2)  # datasets only: not model store, logs


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_registry_repositories_access_logs_and_model_store_policy_outlive_every_stack(
    synth: SynthesizedApp, stage: str
) -> None:
    """Tearing down Dev broke Staging and Prod: Dev's repositories were emptied and deleted, and the artifacts
    bucket policy (the cross-account grant) went with the stack although the bucket stayed."""
    resources = _resources(synth, stage)
    for logical_id in REGISTRY:
        policies = (resources[logical_id]["DeletionPolicy"], resources[logical_id]["UpdateReplacePolicy"])
        assert policies == ("Retain", "Retain"), logical_id
    assert {_props(synth, stage, lid)["EmptyOnDelete"] for lid in REPOSITORIES} == {False}
    for bucket in ("ArtifactsBucket", "AccessLogsBucket"):
        [policy] = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
        ]
        assert (policy["DeletionPolicy"], policy["UpdateReplacePolicy"]) == ("Retain", "Retain"), bucket


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_termination_protection_follows_stage_config(synth: SynthesizedApp, stage: str) -> None:
    retain = load_stage(stage, STAGES[stage]).retain_data
    manifest = json.loads((synth.outdir / f"assembly-{stage}" / "manifest.json").read_text())
    (data,) = [a for a in manifest["artifacts"].values() if a.get("displayName") == f"{stage}/Data"]
    assert data["properties"].get("terminationProtection", False) is retain


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_stack_outputs_name_the_unnamed_buckets_and_repositories(synth: SynthesizedApp, stage: str) -> None:
    template = synth.template(stage, "Data")
    for output in (
        "DatasetsBucketName",
        "ArtifactsBucketName",
        "DataprepRepositoryUri",
        "ServeRepositoryUri",
    ):
        template.has_output(output, {"Value": Match.any_value()})


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_model_registry_and_model_store_are_retained_in_the_stateful_stack(
    synth: SynthesizedApp, stage: str
) -> None:
    resources = _resources(synth, stage)
    for logical_id in MODEL_STORE:
        assert (resources[logical_id]["DeletionPolicy"], resources[logical_id]["UpdateReplacePolicy"]) == (
            "Retain",
            "Retain",
        ), logical_id
    assert resources["ModelPackageGroup"]["Type"] == "AWS::SageMaker::ModelPackageGroup"
    for stack in ("Training", "Serving"):  # stateless stacks, deleted with the stage
        assert not [
            r
            for r in synth.template_json(stage, stack)["Resources"].values()
            if r["Type"] == "AWS::SageMaker::ModelPackageGroup"
        ]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_retained_group_name_never_collides_with_a_re_created_stack(
    synth: SynthesizedApp, stage: str
) -> None:
    name = _props(synth, stage, "ModelPackageGroup")["ModelPackageGroupName"]
    assert "AWS::StackId" in json.dumps(name)  # suffixed with this stack's id, new for every creation


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_no_stack_writes_the_release_history_before_verify(synth: SynthesizedApp, stage: str) -> None:
    """The history (SSM parameter) is written by verify once it passed (scripts/release/checks.py record_release);
    a Data stack that wrote it made a failed or rolled-back deploy look like history (issue 22)."""
    for stack in ("Data", "Training", "Serving"):
        types = {r["Type"] for r in synth.template_json(stage, stack)["Resources"].values()}
        assert "AWS::SSM::Parameter" not in types
    assert EXAMPLE_RELEASE.release_id not in json.dumps(synth.template_json(stage, "Data"))


def built_images(assembly: Path) -> dict[str, dict[str, str]]:
    """Docker image assets of a stage's Data stack: asset id -> build args."""
    manifests = assembly.glob("*Data*.assets.json")
    return {
        asset_id: image["source"].get("dockerBuildArgs", {})
        for manifest in manifests
        for asset_id, image in json.loads(manifest.read_text()).get("dockerImages", {}).items()
    }


def test_the_registry_builds_every_serve_variant_once_and_names_each(
    synth_stages: Any, stage_config: Any
) -> None:
    """Issue 22: `-c build_images=Dev` built Dev's CPU serve image only; the GPU image Staging and Prod run was
    copied from the previous record (the example's placeholder). The registry builds cpu and gpu, each named by an
    output that `release create` reads."""
    built = synth_stages(stage_config("Dev"), release=EXAMPLE_RELEASE, build_images=["Dev"])
    outputs = built.template_json("Dev", "Data")["Outputs"]
    assert {"ServeCpuImageUri", "ServeGpuImageUri"} <= set(outputs)
    variants = sorted(
        args.get("VARIANT", "cpu") for args in built_images(built.outdir / "assembly-Dev").values()
    )
    assert variants == ["cpu", "gpu"]


def test_the_registry_running_a_release_names_its_serve_digests(synth: SynthesizedApp) -> None:
    outputs = synth.template_json("Dev", "Data")["Outputs"]
    for variant, image in EXAMPLE_RELEASE.images.serve.items():
        assert outputs[f"Serve{variant.capitalize()}ImageUri"]["Value"] == image.uri
    assert "ServeGpuImageUri" not in synth.template_json("Staging", "Data").get("Outputs", {})
