"""The serving stack of every stage, asserted against its stage config (fine-grained template assertions).

Uses the session synth of the whole app (tests/infra/conftest.py) plus one extra synth of three variants of Dev:
no model version, a different instance type, a registered model package. Runtime: ~10 s on top of the session synth.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import StageConfig, load_stage
from infra.constructs.endpoint import variant_name
from infra.constructs.monitoring import ROLLBACK
from infra.stages import STAGES
from tests.infra.synthesized import EXAMPLE_RELEASE, SynthesizedApp, make_stage_config

STAGE_NAMES = list(STAGES)
CONFIGS: dict[str, StageConfig] = {name: load_stage(name, values) for name, values in STAGES.items()}
PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/yolo-detector-dev/3"
MODEL_KEY = "models/yolo-detector/v1/model.tar.gz"  # a stage config's own model (no release): the legacy path


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = list(resources(template, kind).values())
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    props: dict[str, Any] = found[0].get("Properties", {})
    return props


def flat(value: Any) -> str:
    """A CloudFormation string value with every intrinsic (reference) shown as <ref>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(flat(part) for part in parts)
    return "<ref>"


def serving(synth: SynthesizedApp, stage: str) -> dict[str, Any]:
    return synth.template_json(stage, "Serving")


@pytest.fixture(scope="module")
def variants(synth_stages: Any) -> SynthesizedApp:
    """Dev without a model version, Dev on another instance type, Dev serving a registered model package."""
    dev = dict(STAGES["Dev"])
    endpoint: dict[str, Any] = dict(dev["endpoint"])  # type: ignore[call-overload]
    return synth_stages(  # type: ignore[no-any-return]
        make_stage_config("Dev", endpoint={"model_data_key": None}),
        load_stage(
            "Resized",
            {**dev, "endpoint": {**endpoint, "instance_type": "ml.c6i.2xlarge", "model_data_key": MODEL_KEY}},
        ),
        load_stage(
            "Package",
            {**dev, "endpoint": {**endpoint, "model_data_key": None, "model_package_arn": PACKAGE_ARN}},
        ),
    )


# ------------------------------------------------------------------------------------------------ names, model
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_serving_resources_have_no_physical_names(synth: SynthesizedApp, stage: str) -> None:
    template = serving(synth, stage)
    names = {
        "AWS::SageMaker::Model": "ModelName",
        "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
        "AWS::SageMaker::Endpoint": "EndpointName",
        "AWS::IAM::Role": "RoleName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::CloudWatch::Dashboard": "DashboardName",
        "AWS::KMS::Key": "AliasName",
    }
    named = [
        f"{k}.{p}"
        for kind, p in names.items()
        for k, r in resources(template, kind).items()
        if p in r.get("Properties", {})
    ]
    assert resources(template, "AWS::SageMaker::Endpoint")  # really looked at an endpoint
    assert named == []


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_model_runs_network_isolated_with_the_stage_model_data(synth: SynthesizedApp, stage: str) -> None:
    model = only(serving(synth, stage), "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True
    assert model["PrimaryContainer"]["ModelDataUrl"] == EXAMPLE_RELEASE.model.model_data_uri


def test_model_package_stage_uses_the_package_not_an_image(variants: SynthesizedApp) -> None:
    container = only(variants.template_json("Package", "Serving"), "AWS::SageMaker::Model")[
        "PrimaryContainer"
    ]
    assert container["ModelPackageName"] == PACKAGE_ARN
    assert "Image" not in container and "ModelDataUrl" not in container


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_execution_role_reads_the_model_store_so_a_rolled_back_model_can_scale_out(
    synth: SynthesizedApp, stage: str
) -> None:
    """Issue 22: each release narrowed the one role to its own model.tar.gz, so after an alarm rollback the old
    (retained) Model could no longer download its model data on scale-out or instance replacement."""
    template = serving(synth, stage)
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    reads = [s for s in statements if "s3:GetObject" in json.dumps(s["Action"])]
    assert [s["Action"] for s in reads] == ["s3:GetObject"]
    bucket = EXAMPLE_RELEASE.model.bucket
    assert sorted(flat(r) for r in reads[0]["Resource"]) == [
        f"arn:<ref>:s3:::{bucket}/models/*",
        f"arn:<ref>:s3:::{bucket}/training-output/*",
    ]
    assert not [s for s in statements if "s3:Delete" in json.dumps(s["Action"])]


# ------------------------------------------------------------------------------------------------ endpoint config
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_variant_has_the_configured_instances_and_timeouts(synth: SynthesizedApp, stage: str) -> None:
    settings = CONFIGS[stage].endpoint
    variant = only(serving(synth, stage), "AWS::SageMaker::EndpointConfig")["ProductionVariants"][0]
    assert variant["VariantName"] == variant_name(settings.instance_type)
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (
        settings.instance_type,
        settings.initial_instance_count,
    )
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == settings.startup_health_check_timeout_s
    assert variant["ModelDataDownloadTimeoutInSeconds"] == settings.model_download_timeout_s


@pytest.mark.parametrize(("stage", "expected"), [("Dev", True), ("Staging", False), ("Prod", False)])
def test_kms_volume_key_only_where_the_instance_type_allows(
    synth: SynthesizedApp, stage: str, expected: bool
) -> None:
    config = only(serving(synth, stage), "AWS::SageMaker::EndpointConfig")
    assert ("KmsKeyId" in config) is expected


@pytest.mark.parametrize(("stage", "expected"), [("Dev", True), ("Prod", False)])
def test_execution_role_may_grant_the_volume_key_only_where_it_is_used(
    synth: SynthesizedApp, stage: str, expected: bool
) -> None:
    statements = [
        st
        for policy in resources(serving(synth, stage), "AWS::IAM::Policy").values()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if "kms:CreateGrant" in st["Action"]
    ]
    assert bool(statements) is expected
    assert all(st["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}} for st in statements)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_data_capture_samples_the_stage_percentage_into_the_artifacts_bucket(
    synth: SynthesizedApp, stage: str
) -> None:
    capture = only(serving(synth, stage), "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == CONFIGS[stage].endpoint.data_capture_percent
    assert capture["EnableCapture"] is True
    assert flat(capture["DestinationS3Uri"]) == "s3://<ref>/data-capture"
    assert "KmsKeyId" in capture
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}


# ------------------------------------------------------------------------------------------------ endpoint
@pytest.mark.parametrize(
    ("stage", "routing"),
    [
        ("Dev", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}),
        ("Staging", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}),  # one GPU instance: no canary
        (
            "Prod",
            {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                "WaitIntervalInSeconds": 300,
            },
        ),
    ],
)
def test_blue_green_traffic_shifting_follows_the_stage(
    synth: SynthesizedApp, stage: str, routing: dict
) -> None:
    policy = only(serving(synth, stage), "AWS::SageMaker::Endpoint")["DeploymentConfig"][
        "BlueGreenUpdatePolicy"
    ]
    assert policy["TrafficRoutingConfiguration"] == routing
    assert policy["TerminationWaitInSeconds"] == CONFIGS[stage].endpoint.deployment.termination_wait_s


@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_rollback_alarms_are_the_guarding_alarms_of_the_stack(synth: SynthesizedApp, stage: str) -> None:
    template = serving(synth, stage)
    rollback = only(template, "AWS::SageMaker::Endpoint")["DeploymentConfig"]["AutoRollbackConfiguration"]
    names = sorted(a["AlarmName"] for a in rollback["Alarms"])
    alarms = {
        a["Properties"].get("AlarmName") for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    assert names == sorted(f"{stage}-Serving-{purpose}" for purpose in ROLLBACK)
    assert set(names) <= alarms


def test_dev_deploys_without_rollback_alarms(synth: SynthesizedApp) -> None:
    assert (
        "AutoRollbackConfiguration"
        not in only(serving(synth, "Dev"), "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_endpoint_updates_retain_variant_capacity(synth: SynthesizedApp, stage: str) -> None:
    assert only(serving(synth, stage), "AWS::SageMaker::Endpoint")["RetainAllVariantProperties"] is True


# ------------------------------------------------------------------------------------------------ autoscaling
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_scalable_target_bounds_follow_config_and_the_endpoint(synth: SynthesizedApp, stage: str) -> None:
    scaling = CONFIGS[stage].endpoint.autoscaling
    target = only(serving(synth, stage), "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (scaling.min_capacity, scaling.max_capacity)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    parts = target["ResourceId"]["Fn::Join"][1]
    assert parts[1]["Fn::GetAtt"][1] == "EndpointName"  # a GetAtt: registered after the endpoint exists
    assert (
        flat(target["ResourceId"])
        == f"endpoint/<ref>/variant/{variant_name(CONFIGS[stage].endpoint.instance_type)}"
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_target_tracking_policies_are_exactly_as_configured(synth: SynthesizedApp, stage: str) -> None:
    scaling = CONFIGS[stage].endpoint.autoscaling
    policies = resources(serving(synth, stage), "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    got = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]: p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in policies
    }
    common = {
        "ScaleInCooldown": scaling.scale_in_cooldown_s,
        "ScaleOutCooldown": scaling.scale_out_cooldown_s,
        "DisableScaleIn": scaling.disable_scale_in,
    }
    expected = {
        "SageMakerVariantInvocationsPerInstance": {**common, "TargetValue": scaling.invocations_target}
    }
    if scaling.concurrency_target is not None:
        expected["SageMakerVariantConcurrentRequestsPerModelHighResolution"] = {
            **common,
            "TargetValue": scaling.concurrency_target,
        }
    assert {
        m: {k: v for k, v in c.items() if k != "PredefinedMetricSpecification"} for m, c in got.items()
    } == (expected)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_scheduled_actions_are_exactly_as_configured(synth: SynthesizedApp, stage: str) -> None:
    target = only(serving(synth, stage), "AWS::ApplicationAutoScaling::ScalableTarget")
    got = [
        (
            a["ScheduledActionName"],
            a["Schedule"],
            a["ScalableTargetAction"]["MinCapacity"],
            a["ScalableTargetAction"]["MaxCapacity"],
        )
        for a in target.get("ScheduledActions", [])
    ]
    assert got == [
        (s.name, s.schedule, s.min_capacity, s.max_capacity)
        for s in CONFIGS[stage].endpoint.autoscaling.scheduled
    ]


def test_instance_type_change_creates_a_new_endpoint_and_scalable_target(
    synth: SynthesizedApp, variants: SynthesizedApp
) -> None:
    before = serving(synth, "Dev")
    after = variants.template_json("Resized", "Serving")
    for kind in ("AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget"):
        old, new = set(resources(before, kind)), set(resources(after, kind))
        assert old and new and not old & new, f"{kind}: same logical id, CloudFormation would update in place"
    target = only(after, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert flat(target["ResourceId"]) == "endpoint/<ref>/variant/c6i-2xlarge"


# ------------------------------------------------------------------------------------------------ alarms, dashboard
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_alarm_notifies_the_stage_topic(synth: SynthesizedApp, stage: str) -> None:
    template = serving(synth, stage)
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 9
    assert [k for k, a in alarms.items() if a["Properties"]["AlarmActions"] != [{"Ref": topic_id}]] == []


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_alarm_topic_is_kms_encrypted_and_tls_only(synth: SynthesizedApp, stage: str) -> None:
    template = Template.from_json(serving(synth, stage))
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_alarm_emails_subscribe_to_the_topic(synth_stages: Any) -> None:
    app = synth_stages(make_stage_config("Dev", alarm_emails=["ops@example.com"]))
    Template.from_json(app.template_json("Dev", "Serving")).has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


@pytest.mark.parametrize(("stage", "gpu"), [("Dev", False), ("Prod", True)])
def test_gpu_alarm_only_on_gpu_instances(synth: SynthesizedApp, stage: str, gpu: bool) -> None:
    alarms = resources(serving(synth, stage), "AWS::CloudWatch::Alarm").values()
    assert any(a["Properties"].get("MetricName") == "GPUUtilization" for a in alarms) is gpu


def capacity_alarm(synth: SynthesizedApp, stage: str) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in resources(serving(synth, stage), "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmDescription"].startswith("instances serving traffic")
    ]
    return alarm


def test_capacity_pinned_at_max_alarm_counts_instances_for_the_configured_minutes(
    synth: SynthesizedApp,
) -> None:
    settings = CONFIGS["Dev"].endpoint
    assert not settings.autoscaling.scheduled
    alarm = capacity_alarm(synth, "Dev")
    assert alarm["Threshold"] == settings.autoscaling.max_capacity - 0.5
    assert alarm["EvaluationPeriods"] == settings.alarms.at_max_capacity_minutes
    # Documented signal: every request adds 1/numberOfInstances to InvocationsPerInstance.
    [expression] = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "invocations / perinstance"
    used = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert {k: (v["Metric"]["MetricName"], v["Stat"]) for k, v in used.items()} == {
        "invocations": ("Invocations", "Sum"),
        "perinstance": ("InvocationsPerInstance", "Sum"),
    }


def _in_force_minus_max(expression: str, when: datetime, instances: float) -> float:
    """The alarm's metric math as CloudWatch evaluates it at one datapoint (HOUR/MINUTE/DAY of its UTC timestamp,
    IF per datapoint), for the expression forms infra/max_in_force.py writes."""
    python = (
        expression.replace("HOUR(instances)", str(when.hour))
        .replace("MINUTE(instances)", str(when.minute))
        .replace("DAY(instances)", str(when.isoweekday()))  # 1 Monday .. 7 Sunday
    )
    return float(eval(python, {"IF": lambda c, a, b: a if c else b, "instances": instances}))


@pytest.mark.parametrize(
    ("hour", "instances", "at_max"),
    [(3, 4, True), (12, 4, False), (12, 8, True), (21, 4, True), (21, 3, False), (6, 4, True), (7, 4, False)],
)
def test_capacity_alarm_compares_with_the_max_of_the_scheduled_window(
    synth: SynthesizedApp, hour: int, instances: int, at_max: bool
) -> None:
    """Issue 22: Prod's nights lower max to 4, but the alarm compared with the day's 8 and never fired at night."""
    windows = {a.name: a.max_capacity for a in CONFIGS["Prod"].endpoint.autoscaling.scheduled}
    assert windows == {"business-hours": 8, "nights": 4}  # 07:00-20:00 UTC and 20:00-07:00 UTC
    alarm = capacity_alarm(synth, "Prod")
    [expression] = [
        q["Expression"] for q in alarm["Metrics"] if q.get("ReturnData", True) and "Expression" in q
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == -0.5
    value = _in_force_minus_max(expression, datetime(2026, 12, 2, hour, 30, tzinfo=UTC), instances)
    assert (value > alarm["Threshold"]) is at_max, (expression, value)
    assert "business-hours 8, nights 4" in alarm["AlarmDescription"]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_nothing_rests_on_cpu_sample_count_or_serverless_metrics(synth: SynthesizedApp, stage: str) -> None:
    template = serving(synth, stage)
    alarms = json.dumps(resources(template, "AWS::CloudWatch::Alarm"))
    dashboard = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["DashboardBody"])
    assert "SampleCount" not in alarms and "SampleCount" not in dashboard
    assert "ModelSetupTime" not in dashboard  # a serverless-endpoint metric
    assert "InvocationsPerInstance" in dashboard


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_dashboard_shows_endpoint_and_training_loss(synth: SynthesizedApp, stage: str) -> None:
    body = json.dumps(only(serving(synth, stage), "AWS::CloudWatch::Dashboard")["DashboardBody"])
    for needle in (
        "InvocationsPerInstance",
        "ModelLatency",
        "Invocation5XXErrors",
        "MemoryUtilization",
        "train:box_loss",
        "val:box_loss",
        "/aws/sagemaker/TrainingJobs",
    ):
        assert needle in body, needle


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_dashboard_training_graphs_show_only_this_stages_jobs(synth: SynthesizedApp, stage: str) -> None:
    body = json.dumps(only(serving(synth, stage), "AWS::CloudWatch::Dashboard")["DashboardBody"])
    searches = re.findall(r"SEARCH\('[^']*'", body.replace('\\"', '"'))
    assert searches
    own = f"Host=yolo Host={stage.lower()}"  # the tokens of job_name_prefix(stage), every job's Host prefix
    assert all(own in s for s in searches), searches


# ------------------------------------------------------------------------------------------------ no model version
def test_stage_without_model_version_has_no_endpoint_and_says_so(variants: SynthesizedApp) -> None:
    template = variants.template_json("Dev", "Serving")
    for kind in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
    ):
        assert not resources(template, kind), kind
    assert "no model version" in template["Outputs"]["EndpointStatus"]["Value"]
    assert resources(template, "AWS::CloudWatch::Dashboard")  # training loss is still worth a dashboard


# ------------------------------------------------------------------------------------------------ release
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_models_and_endpoint_configs_are_retained_on_replacement(synth: SynthesizedApp, stage: str) -> None:
    template = serving(synth, stage)
    for kind in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig"):
        [resource] = resources(template, kind).values()
        assert (resource["UpdateReplacePolicy"], resource["DeletionPolicy"]) == ("Retain", "Retain"), kind


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_serving_stack_names_the_release_it_runs(synth: SynthesizedApp, stage: str) -> None:
    assert serving(synth, stage)["Outputs"]["ReleaseId"]["Value"] == EXAMPLE_RELEASE.release_id


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_execution_role_decrypts_with_the_model_store_key(synth: SynthesizedApp, stage: str) -> None:
    rendered = json.dumps(resources(serving(synth, stage), "AWS::IAM::Policy"))
    assert json.dumps(EXAMPLE_RELEASE.model.kms_key_arn) in rendered
