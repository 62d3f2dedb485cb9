"""The release pipeline (example configuration): stage order, gates around each deploy, the same bytes in Staging
and Prod, the registry shared across accounts, and cdk-nag + cfn-lint clean on the pipeline stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from app.contracts.invocation import is_synthetic
from infra.app import build_app, example_pipeline_stages
from infra.config import ConfigError, load_pipeline
from infra.paths import REPO_ROOT
from infra.release_record import Release
from infra.stacks.pipeline import RUNTIME_VERSIONS
from infra.stage_release import serve_variant
from infra.stages import EXAMPLE_ENVIRONMENTS, EXAMPLE_PIPELINE
from scripts.synth import IGNORED_CFN_LINT_CHECKS
from tests.infra.synthesized import EXAMPLE_RELEASE, SynthesizedApp, make_stage_config

STAGE_ORDER = ["Dev", "Staging", "Prod"]


def pipeline_stages(synth: SynthesizedApp) -> list[dict[str, Any]]:
    [pipeline] = [
        r
        for r in synth.pipeline_template()["Resources"].values()
        if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    stages: list[dict[str, Any]] = pipeline["Properties"]["Stages"]
    return stages


def actions(synth: SynthesizedApp, stage: str) -> list[dict[str, Any]]:
    [found] = [s for s in pipeline_stages(synth) if s["Name"] == stage]
    result: list[dict[str, Any]] = found["Actions"]
    return result


def deploys(stage_actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in stage_actions if a["ActionTypeId"]["Provider"] == "CloudFormation"]


def model_container(synth: SynthesizedApp, stage: str) -> dict[str, Any]:
    [model] = [
        r
        for r in synth.template_json(stage, "Serving")["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Model"
    ]
    container: dict[str, Any] = model["Properties"]["PrimaryContainer"]
    return container


def test_pipeline_is_v2_with_queued_executions(pipeline_synth: SynthesizedApp) -> None:
    [pipeline] = [
        r["Properties"]
        for r in pipeline_synth.pipeline_template()["Resources"].values()
        if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    assert (pipeline["PipelineType"], pipeline["ExecutionMode"]) == ("V2", "QUEUED")


def test_stages_deploy_in_promotion_order_after_source_and_synth(pipeline_synth: SynthesizedApp) -> None:
    names = [s["Name"] for s in pipeline_stages(pipeline_synth)]
    assert names[:2] == ["Source", "Build"]
    assert [n for n in names if n in STAGE_ORDER] == STAGE_ORDER
    assert names.index("Dev") < names.index("Staging") < names.index("Prod")


def test_source_is_the_configured_connection_and_synth_runs_make_test_and_make_synth(
    pipeline_synth: SynthesizedApp,
) -> None:
    [source] = actions(pipeline_synth, "Source")
    assert source["Configuration"]["ConnectionArn"] == EXAMPLE_PIPELINE["connection_arn"]
    assert source["Configuration"]["FullRepositoryId"] == EXAMPLE_PIPELINE["repository"]
    projects = [
        r["Properties"]
        for r in pipeline_synth.pipeline_template()["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project"
    ]
    specs = [json.dumps(p["Source"].get("BuildSpec", "")) for p in projects]
    [synth_spec] = [s for s in specs if "make synth" in s]
    assert synth_spec.index("make test") < synth_spec.index("make synth")
    # releases are never created inside the pipeline (a new record each Synth would self-mutate it forever)
    assert not [s for s in specs if "scripts.release create" in s]


def test_manual_approval_comes_before_any_prod_deploy(pipeline_synth: SynthesizedApp) -> None:
    prod = actions(pipeline_synth, "Prod")
    approvals = [a for a in prod if a["ActionTypeId"]["Category"] == "Approval"]
    assert len(approvals) == 1
    assert approvals[0]["RunOrder"] < min(a["RunOrder"] for a in deploys(prod))
    assert not [
        a
        for s in ("Dev", "Staging")
        for a in actions(pipeline_synth, s)
        if a["ActionTypeId"]["Category"] == "Approval"
    ]


def test_a_waiting_approval_notifies_the_approvers_through_an_encrypted_topic(
    pipeline_synth: SynthesizedApp,
) -> None:
    """Issue 22: nobody was told when the Prod approval waited. A CodeStar Notifications rule on the pipeline for
    'codepipeline-pipeline-manual-approval-needed' publishes to a KMS-encrypted topic that lets the service publish
    and use its key, with the configured approvers subscribed."""
    resources = pipeline_synth.pipeline_template()["Resources"]
    [rule] = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CodeStarNotifications::NotificationRule"
    ]
    assert rule["EventTypeIds"] == ["codepipeline-pipeline-manual-approval-needed"]
    [pipeline] = [lid for lid, r in resources.items() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    assert pipeline in json.dumps(rule["Resource"])
    [target] = rule["Targets"]
    assert target["TargetType"] == "SNS"
    topic_id = target["TargetAddress"]["Ref"]
    topic = resources[topic_id]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    [topic_policy] = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::SNS::TopicPolicy" and {"Ref": topic_id} in r["Properties"]["Topics"]
    ]
    assert any(
        st["Effect"] == "Allow"
        and st["Principal"] == {"Service": "codestar-notifications.amazonaws.com"}
        and st["Action"] == "sns:Publish"
        for st in topic_policy["Statement"]
    ), topic_policy
    [key_grant] = [
        st
        for st in resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
        if st.get("Principal") == {"Service": "codestar-notifications.amazonaws.com"}
    ]
    assert sorted(key_grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    subscriptions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("email", "release-approvers@example.com")
    ]


def test_an_approval_e_mail_that_is_not_an_address_is_refused_naming_the_field() -> None:
    with pytest.raises(
        ConfigError, match=r"pipeline: field 'approval_emails.0': String should match pattern"
    ):
        load_pipeline({**EXAMPLE_PIPELINE, "approval_emails": ["approvers at example.com"]})


def test_approval_comment_summarises_the_model_package_not_the_record(pipeline_synth: SynthesizedApp) -> None:
    [approval] = [a for a in actions(pipeline_synth, "Prod") if a["ActionTypeId"]["Category"] == "Approval"]
    comment = approval["Configuration"]["CustomData"]
    assert f"v{EXAMPLE_RELEASE.model.package_version}" in comment
    assert "val:mAP50-95=0.64" in comment
    assert EXAMPLE_RELEASE.release_id not in comment and EXAMPLE_RELEASE.git_commit[:12] not in comment
    assert len(comment) <= 1000


def test_pipeline_template_is_identical_for_two_records_of_one_model_package(tmp_path: Path) -> None:
    """Issue 22's self-mutation loop: the pipeline template carried the record's id, so every Synth changed it."""
    doc = EXAMPLE_RELEASE.model_dump(mode="json")
    doc.update(
        release_id="r-20270101-000001",
        created_at="2027-01-01T00:00:01Z",
        git_commit="c" * 40,
        notes="another record of the same model package",
    )
    doc["images"]["serve"]["gpu"]["digest"] = "sha256:" + "9" * 64  # a rebuilt image, same repository
    other = Release.model_validate(doc)
    templates = []
    for index, release in enumerate((EXAMPLE_RELEASE, other)):
        stages, pipeline = example_pipeline_stages()
        outdir = tmp_path / f"cdk.out.{index}"
        build_app(stages, release=release, pipeline=pipeline, outdir=str(outdir)).synth()
        templates.append((outdir / "Pipeline.template.json").read_bytes())
    assert templates[0] == templates[1]


@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_preflight_runs_before_the_stage_deploys(pipeline_synth: SynthesizedApp, stage: str) -> None:
    stage_actions = actions(pipeline_synth, stage)
    [preflight] = [a for a in stage_actions if a["Name"] == f"Preflight{stage}"]
    assert preflight["RunOrder"] < min(a["RunOrder"] for a in deploys(stage_actions))
    if stage == "Prod":  # the approval first, then a fresh preflight
        [approval] = [a for a in stage_actions if a["ActionTypeId"]["Category"] == "Approval"]
        assert approval["RunOrder"] < preflight["RunOrder"]


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_post_deploy_verification_follows_every_deploy_of_the_stage(
    pipeline_synth: SynthesizedApp, stage: str
) -> None:
    stage_actions = actions(pipeline_synth, stage)
    [verify] = [a for a in stage_actions if a["Name"] == f"Verify{stage}"]
    assert verify["RunOrder"] > max(a["RunOrder"] for a in deploys(stage_actions))
    # the verifier role's ARN comes from the Serving stack's output (no physical role name)
    assert "ReleaseVerifierRoleArn" in json.dumps(verify["Configuration"]["EnvironmentVariables"])


def test_staging_and_prod_serve_the_same_model_data(pipeline_synth: SynthesizedApp) -> None:
    staging, prod = model_container(pipeline_synth, "Staging"), model_container(pipeline_synth, "Prod")
    assert staging["ModelDataUrl"] == prod["ModelDataUrl"] == EXAMPLE_RELEASE.model.model_data_uri


def test_staging_and_prod_run_the_same_serve_image(pipeline_synth: SynthesizedApp) -> None:
    assert (
        model_container(pipeline_synth, "Staging")["Image"]
        == model_container(pipeline_synth, "Prod")["Image"]
    )


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_every_stage_runs_release_digests_from_the_registry_account(
    pipeline_synth: SynthesizedApp, stage: str
) -> None:
    variant = serve_variant(make_stage_config(stage).endpoint.instance_type)
    assert model_container(pipeline_synth, stage)["Image"] == EXAMPLE_RELEASE.serve_image(variant).uri


def test_registry_shares_model_store_key_and_images_with_later_stages_and_the_pipeline(
    pipeline_synth: SynthesizedApp,
) -> None:
    readers = sorted(
        {
            EXAMPLE_ENVIRONMENTS["Staging"]["account"],
            EXAMPLE_ENVIRONMENTS["Prod"]["account"],
            str(EXAMPLE_PIPELINE["account"]),
        }
    )
    data = pipeline_synth.template_json("Dev", "Data")["Resources"]
    rendered = json.dumps(data)
    for account in readers:
        assert f":iam::{account}:root" in rendered
    [bucket_policy] = [
        json.dumps(r)
        for r in data.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and "ReleaseReadersGetModels" in json.dumps(r)
    ]
    assert "ReleaseReadersGetModels" in bucket_policy and "s3:GetObject" in bucket_policy
    assert "ReleaseReadersDecryptViaS3AndEcr" in json.dumps(data["DataKey"])
    for repository in ("DataprepRepository", "TrainRepository", "ServeRepository"):
        assert "ReleaseReadersPull" in json.dumps(data[repository]["Properties"]["RepositoryPolicyText"])
        [readers_pull] = [
            s
            for s in data[repository]["Properties"]["RepositoryPolicyText"]["Statement"]
            if s.get("Sid") == "ReleaseReadersPull"
        ]
        # the pipeline's preflight reads the policy across accounts to check each stage may pull
        assert "ecr:GetRepositoryPolicy" in readers_pull["Action"]
    group = data["ModelPackageGroup"]["Properties"]["ModelPackageGroupPolicy"]
    assert "sagemaker:DescribeModelPackage" in json.dumps(group)
    # later stages share nothing: they read from the registry
    assert "ReleaseReaders" not in json.dumps(pipeline_synth.template_json("Prod", "Data"))


def test_nothing_starts_the_pipeline_but_a_push(pipeline_synth: SynthesizedApp) -> None:
    """An Approved model version no longer starts an execution: it would only redeploy CURRENT (the record is
    created by an operator and committed; the push starts the pipeline)."""
    types = {r["Type"] for r in pipeline_synth.pipeline_template()["Resources"].values()}
    assert not types & {"AWS::Events::Rule", "AWS::Events::EventBusPolicy"}
    registry = pipeline_synth.template_json("Dev", "Data")["Resources"].values()
    assert "AWS::Events::Rule" not in {r["Type"] for r in registry}


def test_pipeline_stack_is_cfn_lint_clean(pipeline_synth: SynthesizedApp) -> None:
    matches = lint_file(
        pipeline_synth.outdir / "Pipeline.template.json",
        ManualArgs(regions=["us-east-1"], ignore_checks=IGNORED_CFN_LINT_CHECKS),
    )
    assert [str(m) for m in matches] == []  # cdk-nag ran during the synth: it failed on any finding


def test_pipeline_with_environment_agnostic_stages_is_refused_with_the_stage_names() -> None:
    stages = {name: make_stage_config(name) for name in STAGE_ORDER}  # no account/region
    with pytest.raises(
        ConfigError, match=r"pipeline: stage\(s\) Dev, Staging, Prod: field 'account'/'region'"
    ):
        build_app(stages, release=EXAMPLE_RELEASE, pipeline=load_pipeline(EXAMPLE_PIPELINE))


def test_example_pipeline_configuration_is_valid() -> None:
    stages, pipeline = example_pipeline_stages()
    assert list(stages) == STAGE_ORDER and pipeline.manual_approval_before == ("Prod",)


def test_a_stage_added_without_an_example_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """README "Development", "Add a stage": a new stage in STAGES alone used to crash make synth with KeyError: 'QA'."""
    from infra import app

    monkeypatch.setitem(app.STAGES, "QA", app.STAGES["Staging"])
    with pytest.raises(
        ConfigError, match=r"stage 'QA': no example environment; add it to EXAMPLE_ENVIRONMENTS"
    ):
        example_pipeline_stages()


def test_malformed_pipeline_field_is_named() -> None:
    with pytest.raises(ConfigError, match=r"pipeline: field 'connection_arn'"):
        load_pipeline({**EXAMPLE_PIPELINE, "connection_arn": "github-token"})


def test_staging_gets_traffic_while_its_deployment_bakes(pipeline_synth: SynthesizedApp) -> None:
    staging = actions(pipeline_synth, "Staging")
    [start] = [a for a in staging if a["Name"] == "StartBakeLoadStaging"]
    [preflight] = [a for a in staging if a["Name"] == "PreflightStaging"]
    # started after the preflight and before the deploy; the deploy does not wait for it
    assert preflight["RunOrder"] < start["RunOrder"] < min(a["RunOrder"] for a in deploys(staging))
    projects = [
        r["Properties"]
        for r in pipeline_synth.pipeline_template()["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project"
        and "synthetic traffic" in r["Properties"].get("Description", "")
    ]
    [bake] = projects
    variables = {v["Name"]: v["Value"] for v in bake["Environment"]["EnvironmentVariables"]}
    assert variables["STAGE"] == "Staging"
    assert "sagemaker-runtime invoke-endpoint" in variables["BAKE_SCRIPT"]
    timeout = make_stage_config("Staging").endpoint.deployment.max_execution_timeout_s
    assert int(variables["MAX_SECONDS"]) > timeout  # covers the whole blue/green deployment
    assert not [a for a in actions(pipeline_synth, "Prod") if a["Name"].startswith("StartBakeLoad")]


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_verifier_role_may_append_to_the_stage_history(pipeline_synth: SynthesizedApp, stage: str) -> None:
    """verify writes the release id once it passed (record_release): its role needs ssm:PutParameter on exactly
    the stage's parameter."""
    statements = [
        s
        for r in pipeline_synth.template_json(stage, "Serving")["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and "Verifier" in json.dumps(r["Properties"]["Roles"])
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    [history] = [s for s in statements if "ssm:PutParameter" in s["Action"]]
    assert f"parameter/yolo-detector/{stage.lower()}/release-id" in json.dumps(history["Resource"])


def rendered(value: Any) -> str:
    """A CloudFormation string (plain or Fn::Join) with each reference as <ref>."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return str(separator).join(part if isinstance(part, str) else "<ref>" for part in parts)


def codebuild_projects(synth: SynthesizedApp) -> dict[str, dict[str, Any]]:
    return {
        lid: r["Properties"]
        for lid, r in synth.pipeline_template()["Resources"].items()
        if r["Type"] == "AWS::CodeBuild::Project"
    }


def test_every_pipeline_project_pins_its_runtimes_and_the_cdk_cli(pipeline_synth: SynthesizedApp) -> None:
    """Issue 22: standard:7.0 activated Node 18 (aws-cdk-lib needs >= 20) and SelfMutate installed the latest CDK
    CLI. Node's major is package.json's "node" pin, Python pyproject's requires-python, the CLI package.json's."""
    package = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]
    python = re.search(r'requires-python = ">=(\d+\.\d+)', (REPO_ROOT / "pyproject.toml").read_text())
    assert python is not None
    expected = {"nodejs": package["node"].split(".")[0], "python": python[1]}
    assert expected == RUNTIME_VERSIONS
    projects = codebuild_projects(pipeline_synth)
    steps = {lid: p for lid, p in projects.items() if "synthetic traffic" not in p.get("Description", "")}
    assert len(steps) >= 8  # Synth, SelfMutate, asset publishing, preflight, bake start, verify ...
    for lid, project in steps.items():
        spec = json.loads(rendered(project["Source"]["BuildSpec"]))
        assert spec["phases"]["install"]["runtime-versions"] == expected, lid
        assert project["Environment"]["Image"] == "aws/codebuild/standard:8.0", lid
    self_mutate = [json.dumps(p) for p in projects.values() if "cdk -a . deploy" in json.dumps(p)]
    assert self_mutate and f"aws-cdk@{package['aws-cdk']}" in self_mutate[0]


@pytest.mark.parametrize(
    ("stage", "protected"),
    [("Dev", []), ("Staging", ["Staging-Data"]), ("Prod", ["Prod-Data", "Prod-Training", "Prod-Serving"])],
)
def test_verify_applies_and_checks_termination_protection_the_pipeline_ignores(
    pipeline_synth: SynthesizedApp, stage: str, protected: list[str]
) -> None:
    """CDK Pipelines ignores a stack's termination protection (aws/aws-cdk#17871): verify turns it on and checks it
    for exactly the stacks the stage config protects."""
    [spec] = [
        rendered(p["Source"]["BuildSpec"])
        for p in codebuild_projects(pipeline_synth).values()
        if f"scripts.release verify --stage {stage} " in rendered(p["Source"]["BuildSpec"])
    ]
    assert re.findall(r"--protect-stack (\S+?)[\s\"]", spec) == protected
    serving = pipeline_synth.template_json(stage, "Serving")["Resources"].values()
    verifier = json.dumps(
        [r for r in serving if r["Type"] == "AWS::IAM::Policy" and "Verifier" in json.dumps(r)]
    )
    assert "cloudformation:UpdateTerminationProtection" in verifier


@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_preflight_may_describe_every_release_image_in_the_registry(
    pipeline_synth: SynthesizedApp, stage: str
) -> None:
    resources = pipeline_synth.pipeline_template()["Resources"]
    [role] = [
        lid for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role" and f"Preflight{stage}" in lid
    ]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    [describe] = [s for s in statements if "ecr:DescribeImages" in s["Action"]]
    # and reads each repository's policy: may the stage pull? (scripts/lib/image_access.py)
    assert set(describe["Action"]) == {"ecr:DescribeImages", "ecr:GetRepositoryPolicy"}
    repositories = {rendered(r) for r in describe["Resource"]}
    assert repositories == {
        f"arn:aws:ecr:eu-west-1:111111111111:repository/{image.repository_name}"
        for image in EXAMPLE_RELEASE.image_fields().values()
    }


def test_bake_load_renews_its_credentials_and_marks_its_requests(pipeline_synth: SynthesizedApp) -> None:
    """Issue 22: the bake loop may run past its assumed role's one-hour session (MAX_SECONDS), and its synthetic
    requests landed in data capture unmarked."""
    [bake] = [
        p
        for p in codebuild_projects(pipeline_synth).values()
        if "synthetic traffic" in p.get("Description", "")
    ]
    variables = {v["Name"]: v["Value"] for v in bake["Environment"]["EnvironmentVariables"]}
    assert int(variables["MAX_SECONDS"]) > 3600 > int(variables["RENEW_SECONDS"])
    script = variables["BAKE_SCRIPT"]
    loop = script[script.index("while ") :]
    assert 'creds "$ROLE"' in loop and "RENEW_SECONDS" in loop  # re-assumed inside the loop
    assert '--inference-id "$INFERENCE_ID"' in loop and variables["INFERENCE_ID"] == "synthetic-bake-load"
    assert is_synthetic(
        variables["INFERENCE_ID"]
    )  # readers of data capture drop it (app/contracts/invocation.py)


def test_synth_role_assumes_nothing_and_reads_no_model_store(pipeline_synth: SynthesizedApp) -> None:
    """Synth only reads the repository and writes cdk.out (releases are committed, not created there): its role no
    longer assumes the registry's lookup role or reads the model store (it ran `release create` as the read-only
    lookup role, which could not copy images anyway)."""
    resources = pipeline_synth.pipeline_template()["Resources"]
    [synth_project] = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CodeBuild::Project"
        and "make synth" in rendered(r["Properties"]["Source"]["BuildSpec"])
    ]
    role = synth_project["ServiceRole"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "sts:AssumeRole" not in actions
    assert not [a for a in actions if a.startswith(("ecr:Put", "ecr:Upload"))]
    rendered_statements = json.dumps(statements)
    assert "training-output" not in rendered_statements
    assert str(EXAMPLE_RELEASE.model.kms_key_arn) not in rendered_statements  # only the artifact key's grant
