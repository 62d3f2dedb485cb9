"""The training stack of every stage: rules' event patterns, Lambda settings, scoped IAM, alarms, outputs, and the
Lambda assets (only launcher + contracts code; the pydantic layer). Uses the session synth (tests/infra/conftest.py);
runtime ~2 s on top of it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from app.contracts.storage import RAW_PREFIX, TRAINING_READABLE_PREFIXES
from infra.config import LOG_RETENTION_DAYS, ConfigError, StageConfig, load_stage
from infra.constructs.training_lambda import LauncherFunction
from infra.stages import STAGES
from tests.infra.synthesized import SynthesizedApp

CONFIGS: dict[str, StageConfig] = {name: load_stage(name, values) for name, values in STAGES.items()}
RUNNER = "app.launcher.runner.handler"
REGISTRAR = "app.launcher.registrar.handler"


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def function(template: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, fn)] = [
        (k, v)
        for k, v in resources(template, "AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == handler
    ]
    return logical_id, fn["Properties"]


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    def actions(s: dict[str, Any]) -> list[str]:
        return s["Action"] if isinstance(s["Action"], list) else [s["Action"]]

    return [s for s in statements if action in actions(s)]


def function_role(props: dict[str, Any]) -> str:
    return str(props["Role"]["Fn::GetAtt"][0])


def role_id(template: dict[str, Any], logical_id_start: str) -> str:
    [found] = [k for k in resources(template, "AWS::IAM::Role") if k.startswith(logical_id_start)]
    return found


def object_suffixes(statement: dict[str, Any]) -> list[str]:
    """The key patterns of a statement's object ARNs (``/raw/*``), bucket ARNs left out."""
    found = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    joins = [r["Fn::Join"][1] for r in found if isinstance(r, dict) and "Fn::Join" in r]
    return sorted(part for parts in joins for part in parts if isinstance(part, str) and part.startswith("/"))


def rule(template: dict[str, Any], description_start: str) -> dict[str, Any]:
    [props] = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"]["Description"].startswith(description_start)
    ]
    return props


@pytest.fixture(scope="module", params=list(STAGES))
def stage(request: pytest.FixtureRequest, synth: SynthesizedApp) -> tuple[StageConfig, dict[str, Any]]:
    return CONFIGS[request.param], synth.template_json(request.param, "Training")


@pytest.fixture(scope="module")
def dev(synth: SynthesizedApp) -> dict[str, Any]:
    return synth.template_json("Dev", "Training")


def test_dataset_rule_matches_dataset_json_created_in_the_datasets_bucket(dev: dict[str, Any]) -> None:
    props = rule(dev, "Dev: a dataset.json")
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"suffix": "/dataset.json"}]}
    [bucket] = pattern["detail"]["bucket"]["name"]
    assert "DatasetsBucket" in json.dumps(bucket)  # a reference to the Data stack's datasets bucket
    [target] = props["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0] == function(dev, RUNNER)[0]
    assert "DeadLetterConfig" in target


def test_state_change_rules_match_only_this_stages_job_prefix(
    stage: tuple[StageConfig, dict[str, Any]],
) -> None:
    config, template = stage
    finished = rule(template, f"{config.name}: completed")["EventPattern"]
    failed = rule(template, f"{config.name}: failed")["EventPattern"]
    for pattern in (finished, failed):
        assert pattern["source"] == ["aws.sagemaker"]
        assert pattern["detail-type"] == ["SageMaker Training Job State Change"]
        assert pattern["detail"]["TrainingJobName"] == [{"prefix": f"yolo-{config.name.lower()}-"}]
    assert finished["detail"]["TrainingJobStatus"] == ["Completed", "Stopped"]
    assert failed["detail"]["TrainingJobStatus"] == ["Failed"]


@pytest.mark.parametrize(("handler", "timeout"), [(RUNNER, 60), (REGISTRAR, 120)])
def test_lambda_settings(dev: dict[str, Any], handler: str, timeout: int) -> None:
    _, props = function(dev, handler)
    assert props["Runtime"] == "python3.12"
    assert props["Timeout"] == timeout
    assert props["MemorySize"] == 256
    # Opt-in (training.launcher_reserved_concurrency): a reservation can fail CREATE in new accounts.
    assert "ReservedConcurrentExecutions" not in props
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert len(props["Layers"]) == 1


@pytest.mark.parametrize("handler", [RUNNER, REGISTRAR])
def test_async_failures_go_to_the_dead_letter_queue_after_retries(dev: dict[str, Any], handler: str) -> None:
    logical_id, _ = function(dev, handler)
    [config] = [
        c["Properties"]
        for c in resources(dev, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": logical_id}
    ]
    [queue_id] = resources(dev, "AWS::SQS::Queue")
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert config["MaximumRetryAttempts"] == 2


def test_log_retention_follows_the_stage_config(stage: tuple[StageConfig, dict[str, Any]]) -> None:
    config, template = stage
    groups = resources(template, "AWS::Logs::LogGroup").values()
    assert [g["Properties"]["RetentionInDays"] for g in groups] == [config.log_retention_days] * 2


def test_runner_environment_carries_the_stage_training_settings(
    stage: tuple[StageConfig, dict[str, Any]],
) -> None:
    config, template = stage
    env = function(template, RUNNER)[1]["Environment"]["Variables"]
    assert env["INSTANCE_TYPE"] == config.training.instance_type
    assert json.loads(env["USE_SPOT"]) is config.training.use_spot
    assert int(env["MAX_WAIT_SECONDS"]) >= int(env["MAX_RUNTIME_SECONDS"])
    assert json.loads(env["DEFAULT_HYPERPARAMETERS"]) == config.training.default_hyperparameters
    assert env["TRAINING_ROLE_ARN"]["Fn::GetAtt"][1] == "Arn"
    registrar_env = function(template, REGISTRAR)[1]["Environment"]["Variables"]
    assert float(registrar_env["QUALITY_BAR_MAP50_95"]) == config.training.quality_bar_map50_95


def test_runner_may_create_jobs_only_under_the_stage_prefix(dev: dict[str, Any]) -> None:
    _, props = function(dev, RUNNER)
    statements = role_statements(dev, function_role(props))
    [create] = statements_with(statements, "sagemaker:CreateTrainingJob")
    assert sorted(create["Action"]) == [
        "sagemaker:AddTags",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
    ]
    parts = create["Resource"]["Fn::Join"][1]
    assert parts[-1] == ":training-job/yolo-dev-*"
    assert not any("sagemaker:*" in json.dumps(s["Action"]) for s in statements)


def test_runner_may_pass_exactly_the_training_role(dev: dict[str, Any]) -> None:
    _, props = function(dev, RUNNER)
    [pass_role] = statements_with(role_statements(dev, function_role(props)), "iam:PassRole")
    assert pass_role["Resource"] == {"Fn::GetAtt": [role_id(dev, "TrainingRole"), "Arn"]}


def test_registrar_may_only_describe_stage_jobs_and_add_versions_to_its_group(dev: dict[str, Any]) -> None:
    _, props = function(dev, REGISTRAR)
    statements = role_statements(dev, function_role(props))
    [describe] = statements_with(statements, "sagemaker:DescribeTrainingJob")
    assert describe["Resource"]["Fn::Join"][1][-1] == ":training-job/yolo-dev-*"
    [create] = statements_with(statements, "sagemaker:CreateModelPackage")
    rendered = json.dumps(create["Resource"])
    assert ":model-package/yolo-detector-dev-*/*" in rendered  # the group's name ends in the Data stack's id
    assert statements_with(statements, "sagemaker:CreateTrainingJob") == []
    assert statements_with(statements, "iam:PassRole") == []


def test_training_role_reads_datasets_and_writes_only_output_and_checkpoint_prefixes(
    dev: dict[str, Any],
) -> None:
    writes = [s for s in role_statements(dev, role_id(dev, "TrainingRole")) if "s3:PutObject" in s["Action"]]
    objects = [r for s in writes for r in s["Resource"] if "Fn::Join" in r]  # the rest are bucket ARNs
    suffixes = sorted(part for r in objects for part in r["Fn::Join"][1] if isinstance(part, str))
    assert suffixes == ["/checkpoints/*", "/training-output/*"]


def test_notify_topic_is_kms_encrypted_and_tls_only(dev: dict[str, Any]) -> None:
    [topic] = resources(dev, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    [policy] = resources(dev, "AWS::SNS::TopicPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_notify_topic_has_its_own_key_and_leaves_the_data_key_policy_alone(
    synth: SynthesizedApp, stage: tuple[StageConfig, dict[str, Any]]
) -> None:
    config, training = stage
    [topic] = resources(training, "AWS::SNS::Topic").values()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key_policy = training["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in key_policy)
    data = synth.template_json(config.name, "Data")
    [data_key] = resources(data, "AWS::KMS::Key").values()
    principals = json.dumps([s["Principal"] for s in data_key["Properties"]["KeyPolicy"]["Statement"]])
    assert "cloudwatch.amazonaws.com" not in principals


# Logical IDs from before the stack was composed of constructs: a changed one replaces the resource (a new topic
# ARN whose subscribers confirm again, rules and alarms re-created, Lambdas re-created under new names).
PINNED_IDS = {
    "TrainingRoleAA3C7BE5": "AWS::IAM::Role",
    "NotifyTopic5FFA0016": "AWS::SNS::Topic",
    "NotifyTopicPolicy23E22CE3": "AWS::SNS::TopicPolicy",
    "DeadLettersBBF8BAAB": "AWS::SQS::Queue",
    "LauncherDependenciesA769BD2D": "AWS::Lambda::LayerVersion",
    "RunnerFunction51B573FD": "AWS::Lambda::Function",
    "RunnerLogs696CEF90": "AWS::Logs::LogGroup",
    "RegistrarFunction39ADB1E4": "AWS::Lambda::Function",
    "RegistrarLogs6CCC4EBB": "AWS::Logs::LogGroup",
    "DatasetLandedA46F8EE6": "AWS::Events::Rule",
    "TrainingJobFinished0A1F2FC7": "AWS::Events::Rule",
    "TrainingJobFailed55E8B2B6": "AWS::Events::Rule",
    "TrainingJobFailedAlarm818A19C2": "AWS::CloudWatch::Alarm",
    "DeadLettersAlarm3F8DE0AC": "AWS::CloudWatch::Alarm",
}


def test_resources_keep_their_logical_ids(stage: tuple[StageConfig, dict[str, Any]]) -> None:
    config, training = stage
    assert {
        k: training["Resources"][k]["Type"] for k in PINNED_IDS if k in training["Resources"]
    } == PINNED_IDS
    permissions = sorted(resources(training, "AWS::Lambda::Permission"))
    name = config.name
    assert [p.split("AllowEventRule")[0] for p in permissions] == [
        "DatasetLanded",
        "TrainingJobFailed",
        "TrainingJobFinished",
    ]
    # <rule><"AllowEventRule"><function's unique id><hash>: the function's path, then two 8-character hashes
    assert [p.split("AllowEventRule")[1][:-16] for p in permissions] == [
        f"{name}TrainingRunnerFunction",
        f"{name}TrainingRegistrarFunction",
        f"{name}TrainingRegistrarFunction",
    ]


def test_alarms_on_lambda_errors_failed_jobs_and_dead_letters(dev: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources(dev, "AWS::CloudWatch::Alarm").values()]
    by_metric = sorted((a["Namespace"], a["MetricName"]) for a in alarms)
    assert by_metric == [
        ("AWS/Events", "MatchedEvents"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ]
    [failed] = [a for a in alarms if a["MetricName"] == "MatchedEvents"]
    [failed_rule] = [
        k for k, r in resources(dev, "AWS::Events::Rule").items() if k.startswith("TrainingJobFailed")
    ]
    assert failed["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": failed_rule}}]
    assert all(a["AlarmActions"] for a in alarms)


def test_outputs_name_what_the_operator_scripts_need(dev: dict[str, Any]) -> None:
    assert {"RunnerFunctionName", "ModelPackageGroupName", "JobNamePrefix", "TrainingInstanceType"} <= set(
        dev["Outputs"]
    )
    assert dev["Outputs"]["JobNamePrefix"]["Value"] == "yolo-dev-"


def _asset_names(synth: SynthesizedApp, s3_key: str) -> list[str]:
    asset = synth.outdir / f"asset.{s3_key.removesuffix('.zip')}"
    if asset.is_dir():
        return sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    with zipfile.ZipFile(Path(f"{asset}.zip")) as archive:  # pragma: no cover - CDK stages dirs
        return sorted(archive.namelist())


def test_lambda_code_asset_holds_only_launcher_and_contracts(
    synth: SynthesizedApp, dev: dict[str, Any]
) -> None:
    _, props = function(dev, RUNNER)
    names = _asset_names(synth, props["Code"]["S3Key"])
    assert "app/launcher/runner.py" in names
    assert "app/contracts/metrics.py" in names
    assert {n.split("/")[1] for n in names if n.startswith("app/") and n.count("/") > 1} == {
        "contracts",
        "launcher",
    }
    assert not any(n.startswith(("tests/", "infra/", ".venv/")) or "__pycache__" in n for n in names)


def test_dependency_layer_ships_pydantic_for_python_3_12(synth: SynthesizedApp, dev: dict[str, Any]) -> None:
    [layer] = resources(dev, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    names = _asset_names(synth, layer["Properties"]["Content"]["S3Key"])
    assert any(
        n.startswith("python/pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu") for n in names
    )


def test_training_role_reads_exactly_the_artifact_prefixes_the_launcher_accepts_pretrained_from(
    dev: dict[str, Any],
) -> None:
    reads = [s for s in role_statements(dev, role_id(dev, "TrainingRole")) if "s3:GetObject*" in s["Action"]]
    artifact_reads = {suffix for s in reads for suffix in object_suffixes(s) if suffix != "/*"}
    assert artifact_reads == {f"/{p}*" for p in TRAINING_READABLE_PREFIXES}


def test_dataprep_role_reads_its_bucket_and_writes_datasets_but_never_over_raw(dev: dict[str, Any]) -> None:
    """It reads raw/ and the --out it writes (out_check reads dataset.json first: denied, every real job failed)."""
    statements = role_statements(dev, role_id(dev, "DataprepRole"))
    allows = [s for s in statements if s["Effect"] == "Allow"]
    [read] = [s for s in allows if "s3:GetObject*" in s["Action"]]
    assert object_suffixes(read) == ["/*"]
    [write] = [s for s in allows if "s3:PutObject" in s["Action"]]
    assert object_suffixes(write) == ["/*"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert set(deny["Action"]) == {"s3:PutObject*", "s3:DeleteObject*"}
    assert object_suffixes(deny) == [f"/{RAW_PREFIX}*"]
    assert statements_with(allows, "ecr:BatchGetImage"), "the role must pull the dataprep image"
    assert statements_with(allows, "kms:Decrypt"), "the datasets bucket is KMS-encrypted"


def test_dataprep_role_logs_only_to_processing_job_log_groups(dev: dict[str, Any]) -> None:
    statements = role_statements(dev, role_id(dev, "DataprepRole"))
    [logs] = statements_with(statements, "logs:PutLogEvents")
    assert logs["Resource"]["Fn::Join"][1][-1] == ":log-group:/aws/sagemaker/ProcessingJobs:*"
    assert not statements_with(statements, "sagemaker:CreateTrainingJob")


def test_dataprep_image_and_role_are_outputs_for_the_dataprep_script(dev: dict[str, Any]) -> None:
    outputs = dev["Outputs"]
    assert outputs["DataprepRoleArn"]["Value"] == {"Fn::GetAtt": [role_id(dev, "DataprepRole"), "Arn"]}
    image = json.dumps(outputs["DataprepImageUri"]["Value"])
    assert "container-assets" in image or "dkr.ecr" in image  # a built asset (Dev pins nothing)
    assert {"DatasetsBucketName", "DataKeyArn"} <= set(outputs)


def test_pinned_dataprep_image_is_used_as_is(synth_stages: Any, stage_config: Any) -> None:
    pinned = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/dataprep@sha256:{'c' * 64}"
    app = synth_stages(stage_config("Dev", images={"dataprep": pinned}))
    assert app.template_json("Dev", "Training")["Outputs"]["DataprepImageUri"]["Value"] == pinned


def test_training_instance_count_above_one_is_refused_with_the_supported_scale_up() -> None:
    with pytest.raises(ConfigError, match=r"training.instance_count.*ml.g5/ml.p4d"):
        load_stage("Dev", {**STAGES["Dev"], "training": {"instance_count": 2}})


def test_launcher_log_group_takes_any_retention_the_config_allows_and_nothing_else() -> None:
    stack = cdk.Stack()
    common: dict[str, Any] = {
        "handler": "app.launcher.runner.handler",
        "description": "test",
        "environment": {},
        "layer": lambda_.LayerVersion.from_layer_version_arn(
            stack, "Layer", "arn:aws:lambda:us-east-1:123456789012:layer:deps:1"
        ),
        "dead_letters": sqs.Queue(stack, "Queue"),
        "alarm_topic": sns.Topic(stack, "Topic"),
        "timeout": cdk.Duration.seconds(10),
        "memory_mb": 128,
        "reserved_concurrency": None,
    }
    rare = [d for d in LOG_RETENTION_DAYS if d in (400, 2192)]  # two of the less common allowed values
    for days in rare:
        LauncherFunction(stack, f"Fn{days}", log_retention_days=days, **common)
    groups = resources(Template.from_stack(stack).to_json(), "AWS::Logs::LogGroup").values()
    assert sorted(g["Properties"]["RetentionInDays"] for g in groups) == rare
    with pytest.raises(ValueError, match="log_retention_days"):
        LauncherFunction(stack, "Bad", log_retention_days=4, **common)
