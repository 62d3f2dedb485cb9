"""The release pipeline: one CDK Pipelines pipeline that deploys the same release Dev -> Staging -> Prod with gates.

- Source: the repository through a CodeStar/CodeConnections connection (config). Synth: ``make test``, then
  ``make synth`` (cdk-nag + cfn-lint) of the release that ``releases/CURRENT`` names in that commit; the record travels
  along as ``cdk.out/release.json``, so every later step checks exactly that record. Releases are never created here:
  an operator creates the record (``scripts.release create``) and commits it, and the push starts an execution. So
  the pipeline's own template depends on the model package only (never on a record's id, date or commit): a Synth
  that self-mutates the pipeline and restarts it converges instead of looping. Executions are QUEUED, so two
  releases never update one endpoint at once (pipeline type V2).
- Each stage after the first: pre ``preflight`` (package Approved, metric >= the stage's bar, model object present
  with the release's sha256, instance quota >= 2x max capacity, endpoint not Updating). Stages listed in
  ``manual_approval_before`` (Prod) first wait for a person: the approval's comment summarises the release, and a
  CodeStar Notifications rule tells ``approval_emails`` (an encrypted SNS topic) that an approval waits.
- Stages in ``bake_load_stages`` (Staging) whose deployment bakes under rollback alarms: pre ``StartBakeLoad`` starts synthetic
  traffic that runs while the deployment bakes, so the rollback alarms judge the new fleet on data.
- Every stage: post ``verify`` (the endpoint runs the release's image digest and model, its variant instance type
  and data capture match the config, an invocation answers with the release's model, a bounded load smoke passes);
  a silent rollback fails the execution.

The gates run ``python -m scripts.release`` (scripts/release.py, scripts/release/checks.py). Preflight reads the
stage's account through the CDK bootstrap lookup role (``cdk bootstrap --trust-for-lookup``); verify assumes the
stage's ReleaseVerifierRole (its ARN comes from the Serving stack's output). docs/releasing.md.
"""

from __future__ import annotations

import itertools
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines
from constructs import Construct, IValidation

from infra.config import PipelineConfig
from infra.constructs.approval_notifications import ApprovalNotifications
from infra.constructs.bake_load import BakeLoad
from infra.nag import acknowledge, flatten_cfn_reference
from infra.release_record import Release
from infra.stage import PlatformStage

RELEASE_FILE = "cdk.out/release.json"  # the synthesized release, next to the cloud assembly
# Every CodeBuild project of the pipeline (Synth, SelfMutate, asset publishing, the gates) runs on one image with
# pinned runtimes: "If a runtime version is not specified, CodeBuild uses the default version. The default version can
# change when a previously default version reaches end of life" (AWS CodeBuild User Guide, "Available runtimes",
# https://docs.aws.amazon.com/codebuild/latest/userguide/available-runtimes.html, read 2026-12-05). standard:7.0
# activates Node 18, which aws-cdk-lib no longer supports; Ubuntu standard:8.0 offers nodejs 22 and python 3.11 (its
# runtimes.yml). The versions are package.json's "node" major and pyproject's requires-python (a test keeps them so).
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_8_0
RUNTIME_VERSIONS = {"nodejs": "22", "python": "3.11"}
BOOTSTRAP_QUALIFIER = "hnb659fds"  # CDK's default bootstrap qualifier (cdk bootstrap --qualifier)
_INSTALL = [
    "python3 --version",
    "python3 -m venv .venv",
    ".venv/bin/pip install --quiet --disable-pip-version-check -e '.[operator]'",
]


def lookup_role_arn(partition: str, account: str, region: str) -> str:
    """The CDK bootstrap lookup role (ReadOnlyAccess) of an environment: preflight reads the stage through it.
    ``partition``: the stack's (``aws``, ``aws-cn``, ...), never a literal ``aws``."""
    return f"arn:{partition}:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-lookup-role-{account}-{region}"


def approval_comment(release: Release) -> str:
    """What the approver reads: the model package and its metrics. Only the package, never the record's id, date or
    commit: the comment is part of the pipeline's template, which must not change with each record (a changed
    template self-mutates the pipeline and restarts it)."""
    model = release.model
    metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(model.metrics.items()))
    lines = [
        f"Deploy model {model.package_group} v{model.package_version} to Prod ({metrics}; dataset "
        f"{model.dataset_version}).",
        "The release record is this execution's cdk.out/release.json (releases/CURRENT of its commit): "
        "`python -m scripts.release show` and `python -m scripts.release diff <previous id>` show it and what "
        "changes. Preflight runs after approval.",
    ]
    return " ".join(lines)[:1000]  # CodePipeline limits an approval comment to 1000 characters


class PipelineStack(cdk.Stack):
    """Public: ``pipeline`` (pipelines.CodePipeline), ``synth_step``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        stages: list[PlatformStage],
        release: Release,
        cli_version: str,
        **kwargs: Any,
    ) -> None:
        """``cli_version``: the CDK CLI that SelfMutate and asset publishing install (package.json's aws-cdk pin;
        unpinned, CDK Pipelines installs the latest CLI, which may not read this app's cloud assembly)."""
        kwargs.setdefault("description", "Release pipeline: Dev -> Staging -> Prod with gates")
        super().__init__(
            scope, construct_id, env=cdk.Environment(account=config.account, region=config.region), **kwargs
        )
        source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.connection_arn, trigger_on_push=True
        )
        # No release is created here (an operator commits the record): Synth reads the repository and writes cdk.out.
        self.synth_step = pipelines.CodeBuildStep(
            "Synth",
            input=source,
            install_commands=["npm ci --no-audit --no-fund"],
            commands=[
                "make test",
                "make synth",
                f'cp "releases/$(cat releases/CURRENT).json" {RELEASE_FILE}',
            ],
            primary_output_directory="cdk.out",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            synth=self.synth_step,
            pipeline_type=codepipeline.PipelineType.V2,
            # One release at a time per pipeline: a second waits instead of updating an endpoint mid-deployment.
            # CodePipeline User Guide, "Set or change the pipeline execution mode" (read 2026-11-30).
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            cross_account_keys=True,
            enable_key_rotation=True,
            cli_version=cli_version,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
                ),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
            synth_code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(compute_type=codebuild.ComputeType.LARGE),
                timeout=cdk.Duration.minutes(60),
            ),
        )
        for index, stage in enumerate(stages):
            pre: list[pipelines.Step] = []
            if stage.config.name in config.manual_approval_before:
                pre.append(
                    pipelines.ManualApprovalStep(
                        f"Approve{stage.config.name}", comment=approval_comment(release)
                    )
                )
            if index > 0:
                pre.append(self._preflight(config, source, stage, release))
            deployment = stage.config.endpoint.deployment
            # Any blue/green deployment that bakes under rollback alarms (all at once included: it waits
            # wait_interval_s on the new fleet) needs traffic for the alarms to judge.
            if (
                stage.config.name in config.bake_load_stages
                and deployment.rollback_on_alarms
                and deployment.wait_interval_s > 0
            ):
                pre.append(self._start_bake_load(config, source, stage))
            for earlier, later in itertools.pairwise(pre):
                later.add_step_dependency(earlier)
            post = [self._verify(config, source, stage, release, smoke=index == 0)]
            self.pipeline.add_stage(stage, pre=pre, post=post)
        self.pipeline.build_pipeline()
        # A person is told when a release waits for them (infra/constructs/approval_notifications.py).
        self.approvals: ApprovalNotifications | None = (
            ApprovalNotifications(
                self, "ApprovalNotifications", pipeline=self.pipeline.pipeline, emails=config.approval_emails
            )
            if config.manual_approval_before
            else None
        )
        self._role_arns_as_sub()
        self._acknowledge()

    # ------------------------------------------------------------------------------------------------ gates
    def _step_input(self) -> dict[str, Any]:
        return {"additional_inputs": {"cdk.out": self.synth_step}}

    def _preflight(
        self,
        config: PipelineConfig,
        source: pipelines.IFileSetProducer,
        stage: PlatformStage,
        release: Release,
    ) -> pipelines.CodeBuildStep:
        name, account, region = stage.config.name, str(stage.config.account), str(stage.config.region)
        lookup = lookup_role_arn(self.partition, account, region)
        model = release.model
        return pipelines.CodeBuildStep(
            f"Preflight{name}",
            input=source,
            **self._step_input(),
            install_commands=_INSTALL,
            commands=[
                f".venv/bin/python -m scripts.release preflight --stage {name} --release-file {RELEASE_FILE} "
                f"--region {region} --stage-role-arn {lookup}"
            ],
            role_policy_statements=[
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[lookup]),
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage"], resources=[model.package_arn]
                ),
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:{self.partition}:s3:::{model.bucket}/{model.key}"],
                ),
                # every image of the release exists in the registry (ECR DescribeImages) and the stage may pull
                # it (its repository policy: ECR GetRepositoryPolicy, scripts/lib/image_access.py)
                iam.PolicyStatement(
                    actions=["ecr:DescribeImages", "ecr:GetRepositoryPolicy"],
                    resources=sorted(
                        {
                            self.format_arn(
                                service="ecr",
                                account=image.account,
                                region=image.region,
                                resource="repository",
                                resource_name=image.repository_name,
                            )
                            for image in release.image_fields().values()
                        },
                        key=str,
                    ),
                ),
                *(
                    [iam.PolicyStatement(actions=["kms:Decrypt"], resources=[model.kms_key_arn])]
                    if model.kms_key_arn
                    else []
                ),
            ],
            timeout=cdk.Duration.minutes(20),
        )

    def _start_bake_load(
        self, config: PipelineConfig, source: pipelines.IFileSetProducer, stage: PlatformStage
    ) -> pipelines.CodeBuildStep:
        """Starts (does not wait for) the stage's BakeLoad project: traffic while the deploy's canary bakes."""
        name, account, region = stage.config.name, str(stage.config.account), str(stage.config.region)
        deployment = stage.config.endpoint.deployment
        load = BakeLoad(
            self,
            f"BakeLoad{name}",
            stage=name,
            account=account,
            region=region,
            lookup_role_arn=lookup_role_arn(self.partition, account, region),
            # the stack deploys before the endpoint update, then the whole blue/green deployment
            max_seconds=deployment.max_execution_timeout_s + 900,
            parallel=config.bake_load_parallel,
        )
        acknowledge(
            load.project,
            "AwsSolutions-CB4",
            "the bake-load project has no source and produces no artifacts: there is nothing of ours to encrypt "
            "with a customer key (its logs go to CloudWatch Logs)",
        )
        return pipelines.CodeBuildStep(
            f"StartBakeLoad{name}",
            input=source,
            commands=[f"aws codebuild start-build --project-name {load.project.project_name}"],
            role_policy_statements=[
                iam.PolicyStatement(actions=["codebuild:StartBuild"], resources=[load.project.project_arn])
            ],
        )

    def _verify(
        self,
        config: PipelineConfig,
        source: pipelines.IFileSetProducer,
        stage: PlatformStage,
        release: Release,
        *,
        smoke: bool,
    ) -> pipelines.CodeBuildStep:
        name, region = stage.config.name, str(stage.config.region)
        verifier = stage.serving.verifier
        if verifier is None:
            raise ValueError(
                f"stage {name}: no ReleaseVerifierRole (the stage has no endpoint or no pipeline account)"
            )
        requests = config.smoke_requests if smoke else config.smoke_requests * 2
        # CDK Pipelines ignores termination protection (aws/aws-cdk#17871): verify applies it and checks it.
        protect = "".join(
            f" --protect-stack {stack.stack_name}"
            for stack in (stage.data, stage.training, stage.serving)
            if stack.termination_protection
        )
        return pipelines.CodeBuildStep(
            f"Verify{name}",
            input=source,
            **self._step_input(),
            install_commands=_INSTALL,
            env_from_cfn_outputs={"VERIFIER_ROLE_ARN": verifier.output},
            commands=[
                f".venv/bin/python -m scripts.release verify --stage {name} --release-file {RELEASE_FILE} "
                f'--region {region} --stage-role-arn "$VERIFIER_ROLE_ARN" --load-requests {requests} '
                f"--load-concurrency {config.smoke_concurrency}{protect}"
            ],
            # the stage's ReleaseVerifierRole: CloudFormation names it "<Stage>-Serving-<id>-<suffix>"
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{self.partition}:iam::{stage.config.account}:role/{name}-Serving-*"],
                )
            ],
            timeout=cdk.Duration.minutes(config.verify_timeout_minutes),
        )

    def _role_arns_as_sub(self) -> None:
        """CDK Pipelines writes cross-account action role ARNs as Fn::Join of "arn:", the partition and a literal;
        cfn-lint (E3703) requires Fn::Sub there. Same value, rewritten once the actions exist."""
        cfn = self.pipeline.pipeline.node.default_child
        assert isinstance(cfn, codepipeline.CfnPipeline)
        for i, stage in enumerate(self.resolve(cfn.stages)):
            for j, action in enumerate(stage["actions"]):
                value = (action.get("configuration") or {}).get("RoleArn")
                if isinstance(value, dict) and "Fn::Join" in value and value["Fn::Join"][0] == "":
                    cfn.add_property_override(
                        f"Stages.{i}.Actions.{j}.Configuration.RoleArn",
                        {"Fn::Sub": "".join(_sub_part(part) for part in value["Fn::Join"][1])},
                    )

    def _acknowledge(self) -> None:
        """CDK Pipelines generates the pipeline's roles; their wildcards are acknowledged one by one (each rendered
        finding of each generated policy) with the reason that fits its kind, never by rule."""
        acknowledge(
            self.pipeline.pipeline.artifact_bucket,
            "AwsSolutions-S1",
            "the pipeline artifact bucket holds only intermediate build artifacts (KMS-encrypted, TLS-only), read "
            "and written by the pipeline's own roles; CloudTrail records their access",
        )
        for policy in self.node.find_all():
            if isinstance(policy, iam.CfnPolicy):
                policy.node.add_validation(_GeneratedPolicyWildcards(policy))


def _sub_part(part: Any) -> str:
    if isinstance(part, str):
        return part.replace("${", "${!")
    if isinstance(part, dict) and set(part) == {"Ref"}:
        return "${" + str(part["Ref"]) + "}"
    raise ValueError(f"cannot express {part} in Fn::Sub")


_WILDCARD_REASONS: tuple[tuple[str, str], ...] = (
    ("Action::s3:", "CDK's bucket grant on the pipeline's artifact bucket (object actions of one bucket)"),
    ("Action::kms:", "CDK's key grant on the pipeline's artifact key (data-key actions of one key)"),
    ("/aws/codebuild/", "CodeBuild names a log stream per build inside the project's own log group"),
    (":report-group/", "CodeBuild report groups are named per project and build"),
    (
        "/training-output/",
        "read-only GetObject on the registry's training outputs: a newly Approved version's "
        "model.tar.gz, hashed into its release record, is only known at run time",
    ),
    ("ArtifactsBucket", "pipeline artifacts are keyed per execution inside the pipeline's own bucket"),
    (
        ":iam::",
        "deploy/lookup/publish roles of the CDK bootstrap (or a stage's verifier role), assumed by name "
        "pattern because their ARNs live in other accounts",
    ),
    (
        "Resource::*",
        "actions with no resource scope: CDK Pipelines' self-mutation (cloudformation:Describe*, "
        "s3:ListBucket on bootstrap buckets found at run time) and sts:AssumeRole of the gates",
    ),
)


@jsii.implements(IValidation)
class _GeneratedPolicyWildcards:
    """Acknowledges each wildcard finding of one generated policy once its document is resolved."""

    def __init__(self, policy: iam.CfnPolicy) -> None:
        self._policy = policy

    def validate(self) -> list[str]:
        document = cdk.Stack.of(self._policy).resolve(self._policy.policy_document)
        for statement in document.get("Statement", []):
            actions = statement.get("Action", [])
            resources = statement.get("Resource", [])
            findings = [
                f"Action::{a}" for a in ([actions] if isinstance(actions, str) else actions) if "*" in a
            ]
            for resource in [resources] if not isinstance(resources, list) else resources:
                rendered = flatten_cfn_reference(resource)
                if "*" in rendered:
                    findings.append(f"Resource::{rendered}")
            for finding in findings:
                reason = next((r for marker, r in _WILDCARD_REASONS if marker in finding), None)
                if reason is None:
                    raise ValueError(
                        f"pipeline policy {self._policy.node.path}: no reviewed reason for {finding}"
                    )
                acknowledge(
                    self._policy,
                    "AwsSolutions-IAM5",
                    f"{reason} (generated by CDK Pipelines)",
                    applies_to=finding,
                )
        return []
