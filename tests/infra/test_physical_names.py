"""The README's "Names" paragraph, checked against every synthesized template: CloudFormation names every resource,
except the few kinds the README lists (names that something looks up, or that a resource has to name itself)."""

from __future__ import annotations

from tests.infra.conftest import SynthesizedApp

# Name properties of the resource types this platform creates (CloudFormation resource reference, read 2026-11-30).
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::Rule": "Name",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "PolicyName",
}
# What README.md ("Infrastructure (AWS CDK)", Names) says may carry a physical name. Keep the two in step.
README_NAMED = {
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
}


def test_only_the_kinds_the_readme_lists_have_physical_names(synth: SynthesizedApp) -> None:
    named = sorted(
        f"{stage}/{stack}/{logical_id} ({resource['Type']}.{NAME_PROPERTIES[resource['Type']]})"
        for stage, stack, template in synth.templates()
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] in NAME_PROPERTIES
        and resource["Type"] not in README_NAMED
        and NAME_PROPERTIES[resource["Type"]] in resource.get("Properties", {})
    )
    assert named == [], "physical names the README does not mention"


def test_the_readme_names_the_same_kinds() -> None:
    from scripts.cli import REPO_ROOT

    text = (REPO_ROOT / "README.md").read_text()
    for kind in README_NAMED:
        assert f"`{kind}`" in text, kind
