"""Platform-wide infra policies over every synthesized template: no physical names, cdk-nag and cfn-lint clean,
deterministic synth, checks wired into every app, infra importing only app.contracts from app/."""

from __future__ import annotations

import ast
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.app import build_app
from infra.nag import acknowledge, acknowledge_resource, add_checks
from infra.paths import EXAMPLE_RELEASES_DIR, REPO_ROOT
from scripts.synth import is_error, lint, nag_findings
from tests.infra.synthesized import SynthesizedApp, make_stage_config

NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::Lambda::Function": "FunctionName",
}


def test_no_resource_has_a_physical_name(synth: SynthesizedApp) -> None:
    named, seen = [], set()
    for stage, stack, template in synth.templates():
        for logical_id, resource in template.get("Resources", {}).items():
            prop = NAME_PROPERTIES.get(resource["Type"])
            if prop:
                seen.add(resource["Type"])
                if prop in resource.get("Properties", {}):
                    named.append(f"{stage}/{stack}/{logical_id}.{prop}")
    assert {"AWS::S3::Bucket", "AWS::ECR::Repository"} <= seen  # the scan really looked at templates
    assert named == []


def test_cdk_nag_reports_no_findings(synth: SynthesizedApp) -> None:
    assert nag_findings(synth.outdir / "validation-report.json") == ""


def test_cfn_lint_reports_no_errors(synth: SynthesizedApp) -> None:
    templates = sorted(synth.outdir.glob("assembly-*/*.template.json"))
    assert len(templates) == 3 * len(synth.stages)
    assert [str(m) for m in lint(templates) if is_error(m)] == []


def test_templates_hold_no_local_paths(synth: SynthesizedApp) -> None:
    leaking = [p.name for p in synth.outdir.glob("assembly-*/*.json") if str(REPO_ROOT) in p.read_text()]
    assert leaking == []


def test_synth_is_byte_identical_across_two_runs(synth: SynthesizedApp, tmp_path: Path) -> None:
    build_app(outdir=str(tmp_path), releases_dir=EXAMPLE_RELEASES_DIR).synth()
    first = {p.relative_to(synth.outdir): p.read_bytes() for p in synth.outdir.glob("assembly-*/*.json")}
    second = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("assembly-*/*.json")}
    assert sorted(first) == sorted(second)
    assert [str(path) for path in first if first[path] != second[path]] == []


def test_unacknowledged_nag_finding_fails_synth_and_names_it(tmp_path: Path) -> None:
    app = build_app({"Dev": make_stage_config("Dev")}, outdir=str(tmp_path))
    data = app.node.find_child("Dev").node.find_child("Data")
    assert isinstance(data, cdk.Stack)
    s3.Bucket(data, "Unsafe")
    with pytest.raises(RuntimeError, match=r"Validation ?[Ff]ailed"):
        app.synth()
    assert "AwsSolutions-S1 at Dev/Data/Unsafe/Resource" in nag_findings(tmp_path / "validation-report.json")


def test_acknowledgement_without_a_real_reason_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="AwsSolutions-S1"):
        acknowledge(stack, "AwsSolutions-S1", "ok")


def test_infra_imports_no_runtime_code_from_app() -> None:
    offending = []
    for path in (REPO_ROOT / "infra").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            offending += [
                f"{path.name}: {m}"
                for m in modules
                if m.startswith("app") and not m.startswith("app.contracts")
            ]
    assert offending == []


@pytest.mark.parametrize("env", [None, cdk.Environment(account="123456789012", region="eu-west-1")])
def test_token_arn_acknowledgement_matches_in_agnostic_and_pinned_envs(
    tmp_path: Path, env: cdk.Environment
) -> None:
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    add_checks(app)
    stack = cdk.Stack(app, "S", env=env)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    log_groups = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="/aws/x/*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream"], resources=[log_groups]))
    acknowledge_resource(
        role,
        "AwsSolutions-IAM5",
        "log groups of one prefix, names chosen by the service",
        resource=log_groups,
    )
    app.synth()  # raises on an unmatched (unacknowledged) finding


def test_no_construct_hard_codes_the_aws_partition() -> None:
    """Issue 22: `arn:aws:` in infra code breaks the other partitions (aws-cn, aws-us-gov); ARNs take the stack's
    partition (a literal only where CDK resolves it to one). Comments, docstrings and the example config may say it."""
    offenders = []
    for path in sorted((REPO_ROOT / "infra").rglob("*.py")):
        if path.name == "stages.py":  # example connection ARN (placeholder config, not construct code)
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text: str = node.value
            if "\n" not in text and "arn:aws:" in text and not text.lstrip().startswith(("``", "(")):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == []
