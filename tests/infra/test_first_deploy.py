"""What a first deploy into a fresh AWS account needs, asserted at synth (issue 14): launcher concurrency opt-in,
rollback alarms readable by the endpoint role, data-capture changes that take effect, strong cross-stack references,
what survives a stage's removal, scoped PassRole, which physical names remain.

Uses the session synth (tests/infra/conftest.py) plus one extra synth of Dev with the opt-in settings set
(~6 s)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from infra.app import feature_flags
from infra.config import StageConfig, load_stage
from infra.constructs.monitoring import ROLLBACK
from infra.constructs.training_names import release_parameter_name
from infra.paths import REPO_ROOT
from infra.stages import STAGES
from tests.infra.synthesized import SynthesizedApp, make_stage_config

STAGE_NAMES = list(STAGES)
CONFIGS: dict[str, StageConfig] = {name: load_stage(name, values) for name, values in STAGES.items()}
STACKS = ("Data", "Training", "Serving")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return found if isinstance(found, list) else [found]


def manifest_artifact(synth: SynthesizedApp, stage: str, stack: str) -> dict[str, Any]:
    manifest = json.loads((synth.outdir / f"assembly-{stage}" / "manifest.json").read_text())
    [artifact] = [a for a in manifest["artifacts"].values() if a.get("displayName") == f"{stage}/{stack}"]
    return artifact  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def opted_in(synth_stages: Any) -> SynthesizedApp:
    """Dev with reserved launcher concurrency and a data-capture change pending (live 50%, config 100%)."""
    return synth_stages(  # type: ignore[no-any-return]
        make_stage_config(
            "Dev",
            training={"launcher_reserved_concurrency": 3},
            # No release here: the stage serves its own model key, so it has an endpoint.
            endpoint={
                "data_capture_percent_live": 50,
                "model_data_key": "models/yolo-detector/v1/model.tar.gz",
            },
        )
    )


# ------------------------------------------------------------------------------------------------ 1 concurrency
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_launchers_reserve_no_concurrency_by_default(synth: SynthesizedApp, stage: str) -> None:
    functions = resources(synth.template_json(stage, "Training"), "AWS::Lambda::Function").values()
    launchers = [f for f in functions if f["Properties"].get("Handler", "").startswith("app.launcher.")]
    assert len(launchers) == 2
    assert [f for f in launchers if "ReservedConcurrentExecutions" in f["Properties"]] == []


def test_launcher_reserved_concurrency_is_an_opt_in_stage_setting(opted_in: SynthesizedApp) -> None:
    functions = resources(opted_in.template_json("Dev", "Training"), "AWS::Lambda::Function").values()
    reserved = [
        f["Properties"]["ReservedConcurrentExecutions"]
        for f in functions
        if f["Properties"].get("Handler", "").startswith("app.launcher.")
    ]
    assert reserved == [3, 3]


# ------------------------------------------------------------------------------------------------ 2 rollback alarms
@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_endpoint_role_may_describe_exactly_the_rollback_alarms(synth: SynthesizedApp, stage: str) -> None:
    template = synth.template_json(stage, "Serving")
    [describe] = [s for s in statements(template) if "cloudwatch:DescribeAlarms" in actions(s)]
    assert actions(describe) == ["cloudwatch:DescribeAlarms"]
    arns = sorted(r["Fn::Join"][1][-1] for r in describe["Resource"])
    assert arns == sorted(f":alarm:{stage}-Serving-{purpose}" for purpose in ROLLBACK)
    [endpoint] = resources(template, "AWS::SageMaker::Endpoint").values()
    rollback = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert sorted(f":alarm:{a['AlarmName']}" for a in rollback) == arns


def test_no_describe_alarms_where_nothing_rolls_back(synth: SynthesizedApp) -> None:
    assert not CONFIGS["Dev"].endpoint.deployment.rollback_on_alarms
    template = synth.template_json("Dev", "Serving")
    assert [s for s in statements(template) if "cloudwatch:DescribeAlarms" in actions(s)] == []


# ------------------------------------------------------------------------------------------------ 4 data capture
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_unchanged_data_capture_keeps_retaining_variant_properties(synth: SynthesizedApp, stage: str) -> None:
    [endpoint] = resources(synth.template_json(stage, "Serving"), "AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["RetainAllVariantProperties"] is True


def test_data_capture_change_deploys_without_retaining_variant_properties(opted_in: SynthesizedApp) -> None:
    template = opted_in.template_json("Dev", "Serving")
    [endpoint] = resources(template, "AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["RetainAllVariantProperties"] is False
    [config] = resources(template, "AWS::SageMaker::EndpointConfig").values()
    assert config["Properties"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    warnings = Annotations.from_stack(opted_in.stage("Dev").serving).find_warning("*", Match.any_value())
    text = json.dumps([w.entry.data for w in warnings])
    assert "data capture changes from 50% to 100%" in text, text
    assert "data_capture_percent_live to 100" in text


# ------------------------------------------------------------------------------------------------ 7 references
def test_cross_stack_references_are_strong_by_configuration() -> None:
    assert feature_flags()["@aws-cdk/core:defaultCrossStackReferences"] == "strong"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_stacks_read_data_through_imports_that_pin_it(synth: SynthesizedApp, stage: str) -> None:
    """Fn::ImportValue: CloudFormation refuses to delete Data, or change an output, while a stack imports it."""
    for stack in STACKS:
        assert "Fn::GetStackOutput" not in json.dumps(synth.template_json(stage, stack)), stack
    for stack in ("Training", "Serving"):
        assert "Fn::ImportValue" in json.dumps(synth.template_json(stage, stack)), stack
    assert synth.template_json(stage, "Data")["Outputs"]
    assert any("Export" in o for o in synth.template_json(stage, "Data")["Outputs"].values())


# ------------------------------------------------------------------------------------------------ 8 survival
@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("stack", ["Training", "Serving"])
def test_stateless_stacks_termination_protection_is_stage_data(
    synth: SynthesizedApp, stage: str, stack: str
) -> None:
    protected = manifest_artifact(synth, stage, stack)["properties"].get("terminationProtection", False)
    assert protected is CONFIGS[stage].protect_stateless_stacks
    assert CONFIGS["Prod"].protect_stateless_stacks


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_launcher_logs_and_dead_letters_are_kept_where_the_stage_keeps_data(
    synth: SynthesizedApp, stage: str
) -> None:
    template = synth.template_json(stage, "Training")
    kept = [
        *resources(template, "AWS::Logs::LogGroup").values(),
        *resources(template, "AWS::SQS::Queue").values(),
    ]
    assert len(kept) == 3
    expected = "Retain" if CONFIGS[stage].retain_data else "Delete"
    assert {r["DeletionPolicy"] for r in kept} == {expected}


# ------------------------------------------------------------------------------------------------ 9 IAM and names
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_runner_passes_the_training_role_only_to_sagemaker(synth: SynthesizedApp, stage: str) -> None:
    passes = [s for s in statements(synth.template_json(stage, "Training")) if "iam:PassRole" in actions(s)]
    assert passes
    for statement in passes:
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


# Type -> the property that would give it a physical (account-visible) name.
PHYSICAL_NAMES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "PolicyName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SSM::Parameter": "Name",
}


# What docs/infrastructure.md says may carry a physical name. Keep the two in step.
README_NAMED = {
    "AWS::CloudWatch::Alarm",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::SageMaker::ModelPackageGroup",
}


def test_the_readme_names_the_same_kinds() -> None:
    text = (REPO_ROOT / "docs" / "infrastructure.md").read_text()
    assert [kind for kind in sorted(README_NAMED) if f"`{kind}`" not in text] == []


@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_the_release_history_parameter_is_a_documented_stage_unique_name(
    pipeline_synth: SynthesizedApp, stage: str
) -> None:
    """Issue 22: the SSM release-id parameter is a name no stack owns (verify writes it, release history and
    rollback read it) and docs/infrastructure.md did not list it among the names that remain. Its one appearance in a
    template, the stage's verifier grant, must be exactly that documented, stage-carrying name."""
    text = (REPO_ROOT / "docs" / "infrastructure.md").read_text()
    names = text[text.index("Buckets, keys, repositories") : text.index("## Stage config reference")]
    assert "`/yolo-detector/<stage>/release-id`" in names
    assert release_parameter_name(stage) == f"/yolo-detector/{stage.lower()}/release-id"
    grants = [
        json.dumps(s["Resource"])
        for s in statements(pipeline_synth.template_json(stage, "Serving"))
        if "ssm:PutParameter" in actions(s)
    ]
    assert len(grants) == 1 and f"parameter{release_parameter_name(stage)}" in grants[0], grants


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_only_the_documented_physical_names_remain_and_they_are_stage_unique(
    synth: SynthesizedApp, stage: str
) -> None:
    """docs/infrastructure.md: rollback alarms (named by the endpoint, a cycle otherwise), target-tracking policies
    (Application Auto Scaling requires a name) and the model package group; each carries the stage."""
    named: dict[str, list[str]] = {}
    for stack in STACKS:
        for resource in synth.template_json(stage, stack)["Resources"].values():
            prop = PHYSICAL_NAMES.get(resource["Type"])
            if prop and prop in resource.get("Properties", {}):
                named.setdefault(resource["Type"], []).append(json.dumps(resource["Properties"][prop]))
    assert set(named) <= README_NAMED, named
    assert sorted(named["AWS::CloudWatch::Alarm"]) == sorted(
        json.dumps(f"{stage}-Serving-{purpose}") for purpose in ROLLBACK
    )
    assert all(
        json.loads(n).startswith(f"{stage}-Serving-")
        for n in named["AWS::ApplicationAutoScaling::ScalingPolicy"]
    )
    assert all(stage.lower() in n for n in named.get("AWS::SageMaker::ModelPackageGroup", []))
