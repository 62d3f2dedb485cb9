"""The release pipeline: one CDK Pipelines pipeline that deploys the same release Dev -> Staging -> Prod with gates.

- Source: the repository through a CodeStar/CodeConnections connection (config). Synth: ``make test``, then
  ``scripts.release create --if-new-package`` (a newer Approved model version becomes a new release record), then
  ``make synth`` (cdk-nag + cfn-lint); the release record it synthesized travels along as ``cdk.out/release.json``,
  so every later step checks exactly that record. A push, or an Approved model version in the registry (event
  forwarded by the registry stage's Data stack), starts an execution; executions are QUEUED, so two releases never
  update one endpoint at once (pipeline type V2).
- Each stage after the first: pre ``preflight`` (package Approved, metric >= the stage's bar, model object present
  with the release's sha256, instance quota >= 2x max capacity, endpoint not Updating). Stages listed in
  ``manual_approval_before`` (Prod) first wait for a person: the approval's comment summarises the release.
- Stages in ``bake_load_stages`` (Staging) whose deployment bakes under rollback alarms: pre ``StartBakeLoad`` starts synthetic
  traffic that runs while the deployment bakes, so the rollback alarms judge the new fleet on data.
- Every stage: post ``verify`` (the endpoint runs the release's image digest and model, its variant instance type
  and data capture match the config, an invocation answers with the release's model, a bounded load smoke passes);
  a silent rollback fails the execution.

The gates run ``python -m scripts.release`` (scripts/release.py, scripts/release_checks.py). Preflight reads the
stage's account through the CDK bootstrap lookup role (``cdk bootstrap --trust-for-lookup``); verify assumes the
stage's ReleaseVerifierRole (its ARN comes from the Serving stack's output). README: "Releasing".
"""

from __future__ import annotations

import itertools
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines
from constructs import Construct, IValidation

from app.contracts.release import Release
from infra.config import PipelineConfig
from infra.constructs import training_names as names
from infra.constructs.bake_load import BakeLoad
from infra.nag import acknowledge, flatten_cfn_reference
from infra.stacks.stateful import model_approved_pattern
from infra.stage import PlatformStage

RELEASE_FILE = "cdk.out/release.json"  # the synthesized release, next to the cloud assembly
BOOTSTRAP_QUALIFIER = "hnb659fds"  # CDK's default bootstrap qualifier (cdk bootstrap --qualifier)
_INSTALL = [
    "python3 --version",
    "python3 -m venv .venv",
    ".venv/bin/pip install --quiet --disable-pip-version-check -e '.[operator]'",
]


def lookup_role_arn(account: str, region: str) -> str:
    """The CDK bootstrap lookup role (ReadOnlyAccess) of an environment: preflight reads the stage through it."""
    return f"arn:aws:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-lookup-role-{account}-{region}"


def approval_comment(release: Release, previous: Release | None) -> str:
    """What the approver reads: the release, its model's metrics, and what changes from the release before it."""
    model = release.model
    metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(model.metrics.items()))
    lines = [
        f"Release {release.release_id} (commit {release.git_commit[:12]}): model {model.package_group} "
        f"v{model.package_version}, {metrics}; dataset {model.dataset_version}.",
    ]
    if previous is None:
        lines.append("First release: no earlier record to compare with.")
    else:
        changes = [
            f"{name}: {old.split('@')[-1][:19]} -> {new.split('@')[-1][:19]}"
            for name, new in release.image_uris().items()
            if (old := previous.image_uris().get(name, "none")) != new
        ]
        if previous.model.package_arn != model.package_arn:
            changes.append(
                f"model: v{previous.model.package_version} ({previous.model.quality:g}) -> "
                f"v{model.package_version} ({model.quality:g})"
            )
        lines.append(f"Changes from {previous.release_id}: {'; '.join(changes) or 'none'}.")
    lines.append("Preflight runs after approval; `python -m scripts.release diff` shows the full difference.")
    return " ".join(lines)[:1000]  # CodePipeline limits an approval comment to 1000 characters


class PipelineStack(cdk.Stack):
    """Public: ``pipeline`` (pipelines.CodePipeline), ``approval_rule``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        stages: list[PlatformStage],
        release: Release,
        previous_release: Release | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "Release pipeline: Dev -> Staging -> Prod with gates")
        super().__init__(
            scope, construct_id, env=cdk.Environment(account=config.account, region=config.region), **kwargs
        )
        source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.connection_arn, trigger_on_push=True
        )
        registry = stages[0].config
        registry_lookup = lookup_role_arn(str(registry.account), str(registry.region))
        self.synth_step = pipelines.CodeBuildStep(
            "Synth",
            input=source,
            install_commands=["npm ci --no-audit --no-fund"],
            commands=[
                "make test",
                # An execution started by an Approved model version releases it: a new record from the registry's
                # latest Approved version and the current digests (nothing when the current release has it).
                f".venv/bin/python -m scripts.release create --from-stage {registry.name} --if-new-package "
                f'--stage-role-arn {registry_lookup} --git-commit "$CODEBUILD_RESOLVED_SOURCE_VERSION" '
                f"--region {registry.region}",
                "make synth",
                f'cp "releases/$(cat releases/CURRENT).json" {RELEASE_FILE}',
            ],
            primary_output_directory="cdk.out",
            role_policy_statements=[
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[registry_lookup]),
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:aws:s3:::{release.model.bucket}/training-output/*"],
                ),
                *(
                    [iam.PolicyStatement(actions=["kms:Decrypt"], resources=[release.model.kms_key_arn])]
                    if release.model.kms_key_arn
                    else []
                ),
            ],
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
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                    compute_type=codebuild.ComputeType.SMALL,
                ),
            ),
            synth_code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(compute_type=codebuild.ComputeType.LARGE),
                timeout=cdk.Duration.minutes(60),
            ),
        )
        first = stages[0]
        for index, stage in enumerate(stages):
            pre: list[pipelines.Step] = []
            if stage.config.name in config.manual_approval_before:
                pre.append(
                    pipelines.ManualApprovalStep(
                        f"Approve{stage.config.name}", comment=approval_comment(release, previous_release)
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
        self._role_arns_as_sub()
        self._start_on_approval(first, release)
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
        lookup = lookup_role_arn(account, region)
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
                    actions=["s3:GetObject"], resources=[f"arn:aws:s3:::{model.bucket}/{model.key}"]
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
            lookup_role_arn=lookup_role_arn(account, region),
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
        return pipelines.CodeBuildStep(
            f"Verify{name}",
            input=source,
            **self._step_input(),
            install_commands=_INSTALL,
            env_from_cfn_outputs={"VERIFIER_ROLE_ARN": verifier.output},
            commands=[
                f".venv/bin/python -m scripts.release verify --stage {name} --release-file {RELEASE_FILE} "
                f'--region {region} --stage-role-arn "$VERIFIER_ROLE_ARN" --load-requests {requests} '
                f"--load-concurrency {config.smoke_concurrency}"
            ],
            # the stage's ReleaseVerifierRole: CloudFormation names it "<Stage>-Serving-<id>-<suffix>"
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:aws:iam::{stage.config.account}:role/{name}-Serving-*"],
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

    # ------------------------------------------------------------------------------------------------ trigger
    def _start_on_approval(self, registry_stage: PlatformStage, release: Release) -> None:
        """The registry stage forwards "Approved" model package events here; they start an execution."""
        registry_account = release.model.account
        events.CfnEventBusPolicy(
            self,
            "RegistryMayForwardApprovals",
            statement_id="RegistryApprovals",
            event_bus_name="default",
            statement={
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{self.partition}:iam::{registry_account}:root"},
                "Action": "events:PutEvents",
                "Resource": f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default",
            },
        )
        pattern = model_approved_pattern(names.model_package_group_name(registry_stage.config.name))
        self.approval_rule = events.Rule(
            self,
            "ModelApprovedStartsRelease",
            description="An Approved model version in the registry starts the release pipeline",
            event_pattern=events.EventPattern(
                account=[registry_account],
                source=pattern.source,
                detail_type=pattern.detail_type,
                detail=pattern.detail,
            ),
            targets=[targets.CodePipeline(self.pipeline.pipeline)],
        )

    def _acknowledge(self) -> None:
        """CDK Pipelines generates the pipeline's roles; their wildcards are acknowledged one by one (each rendered
        finding of each generated policy) with the reason that fits its kind, never by rule."""
        acknowledge(
            self.approval_rule,
            "Serverless-EventBusDLQ",
            "a lost start event loses nothing: the Approved version stays in the registry and an operator starts the "
            "pipeline by hand (python -m scripts.release promote); a DLQ would hold only that event",
        )
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
