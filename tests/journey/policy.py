"""Least privilege, enforced: every AWS call a journey step makes as a role is evaluated by the policy simulator on
the synthesized documents - the role's identity policies, and the bucket, repository or key policy of the resource
(in whichever account it lives) - and a call they do not allow fails the test naming step, role, action and resource.

How calls are seen: while a step runs ``as_role``, botocore's ``BaseClient._make_api_call`` is wrapped (test
plumbing, not our code), each call is mapped to the IAM action(s) and resource ARN(s) it needs (the calls the
project's code makes; an unmapped call made as a role fails the test, so nothing goes unchecked), and the calls a
service makes on the role's behalf - SageMaker pulling an image and reading a channel, S3 asking KMS for the
bucket key - are checked through ``require``. Credentials from an AssumeRole of a synthesized role (a release gate
assuming a stage's ReleaseVerifierRole) are that role's: the trust policy is judged, then its calls are checked. The call then goes to moto with the role's own STS credentials, in its
own account.

Why not moto's own enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``): moto evaluates every non-S3 request against the
resource ``*`` (moto/core/responses.py ``call_action``), so any statement scoped to an ARN - all of ours - is
ignored and the call denied; and it evaluates no resource policy and no cross-account request (its own module
docstring, moto/iam/access_control.py).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.client

from tests.journey.environment import environment
from tests.journey.loader import Cloud, Role
from tests.journey.simulator import PolicySimulator


class PermissionDenied(AssertionError):
    pass


@dataclass(frozen=True)
class Grant:
    """One use of a grant: the statement of a role's identity policy that allowed a call, the action and resource
    patterns of it that matched (as the simulator explains its decision), and the call's own action."""

    role: str  # label, e.g. Dev-Training/TrainingRole...
    policy: str  # inline policy name or managed policy ARN
    statement: str  # Sid, else the statement's 1-based position
    action_pattern: str
    resource_pattern: str
    action: str


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    context: tuple[tuple[str, Any], ...] = ()


class PolicyCheck:
    def __init__(self, cloud: Cloud, simulator: PolicySimulator) -> None:
        self.cloud = cloud
        self.simulator = simulator
        self.by_access_key: dict[str, Role] = {}
        self.step = "?"
        self.checked: list[tuple[str, str, str, str]] = []  # (step, role, action, resource)
        self.denials: list[str] = []
        self.roles_run: dict[
            str, Role
        ] = {}  # label -> role, every role a step ran as (kept after a teardown)
        self.grants_used: set[Grant] = (
            set()
        )  # what allowed each call (tests/journey/permissions.py reports it)
        self._service_assuming = False
        # Lambda's Invoke runs the function: set by the journey to run the handler in-process as its role
        self.invoker: Any = None
        # CreateTrainingJob requests as sent (moto replaces a job's MetricDefinitions with its own)
        self.training_requests: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ evaluation
    def require(self, role: Role, action: str, resource: str, context: dict[str, Any] | None = None) -> None:
        """Fail the test unless ``role`` may do ``action`` on ``resource`` (identity + resource policy)."""
        self.roles_run.setdefault(role.label, role)
        account, resource_policy = self._owner(action, resource, role)
        full_context = {
            "aws:SecureTransport": "true",
            "aws:PrincipalAccount": role.account,
            "aws:PrincipalArn": role.arn,
            **(context or {}),
        }
        if action.startswith("s3:"):
            full_context.setdefault("s3:TlsVersion", "1.3")
        decision = self.simulator.decide(
            principal=role.arn,
            action=action,
            resource=resource,
            resource_account=account,
            identity_policies=role.named_documents(),
            resource_policy=resource_policy,
            context=full_context,
        )
        self.checked.append((self.step, role.label, action, resource))
        if decision.allowed:
            self._record_grants(role, action, decision.detail)
        else:
            where = "" if account == role.account else f" in account {account} (cross-account)"
            denial = (
                f"step '{self.step}': role {role.label} ({role.arn}) may not {action} on {resource}{where}: "
                f"{decision.why()}"
            )
            if denial not in self.denials:
                self.denials.append(denial)

    def verdict(self) -> None:
        """Fail with every denial seen since the last verdict. Denials are collected rather than raised at the
        call, so a step finishes (moto itself does not deny) and the steps after it still have its output: one
        defect fails its own step, not the whole journey."""
        denials, self.denials = self.denials, []
        if denials:
            shown = denials[:5]
            more = (
                f"\n... and {len(denials) - len(shown)} more denial(s) like these" if len(denials) > 5 else ""
            )
            raise PermissionDenied("\n".join(shown) + more)

    def _record_grants(self, role: Role, action: str, analysis: Any) -> None:
        """The identity statements that allowed ``action``, from the simulator's explanation of its decision."""
        for statement in ((analysis or {}).get("identityAnalysis") or {}).get("allowStatements", []):
            explain = statement.get("explain") or {}
            actions = explain.get("actions") or []
            resources = explain.get("resources") or []
            for matched_action in actions if isinstance(actions, list) else [actions]:
                if not matched_action.get("matches"):
                    continue
                for matched in resources if isinstance(resources, list) else [resources]:
                    if matched.get("matches"):
                        self.grants_used.add(
                            Grant(
                                role=role.label,
                                policy=statement["policyId"],
                                statement=str(explain.get("identifier")),
                                action_pattern=matched_action["action"],
                                resource_pattern=matched["resource"],
                                action=action,
                            )
                        )

    def require_assume(self, caller: Role | None, caller_arn: str, target: Role) -> None:
        """sts:AssumeRole of ``target`` by ``caller`` (None: an account's administrator, allowed everything by its
        identity policy), judged on the caller's identity policy and ``target``'s trust policy, across accounts:
        "the role trust policy ... and the identity policy of the principal" both must allow it
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html)."""
        administrator = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        decision = self.simulator.decide(
            principal=caller_arn,
            action="sts:AssumeRole",
            resource=target.arn,
            resource_account=target.account,
            identity_policies=caller.named_documents() if caller else {"administrator": administrator},
            resource_policy=target.trust,
            context={"aws:PrincipalArn": caller_arn, "aws:PrincipalAccount": caller_arn.split(":")[4]},
        )
        self.checked.append((self.step, caller.label if caller else caller_arn, "sts:AssumeRole", target.arn))
        if not decision.allowed:
            denial = (
                f"step '{self.step}': {caller.label if caller else caller_arn} may not sts:AssumeRole on "
                f"{target.arn} ({target.label}): {decision.why()}"
            )
            if denial not in self.denials:
                self.denials.append(denial)
        elif caller is not None:
            self._record_grants(caller, "sts:AssumeRole", decision.detail)

    def require_all(self, role: Role, needs: list[Need]) -> None:
        for need in needs:
            self.require(role, need.action, need.resource, dict(need.context))

    def _owner(self, action: str, resource: str, caller: Role) -> tuple[str, dict[str, Any] | None]:
        """(account owning ``resource``, its resource policy or None)."""
        if resource.startswith("arn:aws:s3:::"):
            bucket = resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
            if bucket not in self.cloud.bucket_accounts:
                raise PermissionDenied(
                    f"step '{self.step}': role {caller.label} ({caller.arn}) may not {action} on {resource}: "
                    "no such bucket"
                )
            return self.cloud.bucket_accounts[bucket], self.cloud.bucket_policies.get(bucket)
        parts = resource.split(":")
        account = parts[4] if len(parts) > 4 and parts[4] else caller.account
        if resource.startswith("arn:aws:ecr:"):
            return account, self.cloud.repository_policies.get(resource)
        if resource.startswith("arn:aws:kms:"):
            if resource not in self.cloud.key_policies:
                raise PermissionDenied(
                    f"step '{self.step}': role {caller.label} ({caller.arn}) may not {action} on {resource}: "
                    "no such key"
                )
            return account, self.cloud.key_policies[resource]
        return account, None

    # ------------------------------------------------------------------ what a call needs
    def needs(
        self, service: str, operation: str, params: dict[str, Any], region: str, account: str
    ) -> list[Need]:
        mapper = _MAPPERS.get((service, operation))
        if mapper is None:
            raise PermissionDenied(
                f"step '{self.step}': the journey does not know which IAM action {service}:{operation} needs; "
                "add it to tests/journey/policy.py _MAPPERS"
            )
        return mapper(self, params, region, account)

    def kms_via(self, bucket: str, action: str, region: str, service: str = "s3") -> list[Need]:
        """S3 (or SNS) asks KMS for the data key as the caller: the caller needs the key too
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html: "you must have
        kms:GenerateDataKey" to upload and "kms:Decrypt" to download an object encrypted with a KMS key)."""
        key = self.cloud.bucket_keys.get(bucket) if service == "s3" else bucket
        if not key:
            return []
        context = (("kms:ViaService", f"{service}.{region}.amazonaws.com"),)
        return [Need(action, key, context)]

    # ------------------------------------------------------------------ running as a role
    @contextlib.contextmanager
    def as_role(self, step: str, role: Role) -> Iterator[dict[str, str]]:
        """Run the block with ``role``'s credentials (environment and boto3's default session) and every call
        checked; yields the credentials."""
        self._service_assuming = True  # the service's own AssumeRole (trusted by its service principal)
        try:
            creds = self.cloud.credentials_of(role)
        finally:
            self._service_assuming = False
        self.by_access_key[creds["AWS_ACCESS_KEY_ID"]] = role
        with self.stepping(step), environment(creds):
            yield creds

    @contextlib.contextmanager
    def stepping(self, step: str) -> Iterator[None]:
        """Name the step for the calls made in the block (by a role assumed inside it, e.g. a gate's stage role)."""
        previous_step, self.step = self.step, step
        try:
            yield
        finally:
            self.step = previous_step

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Wrap botocore so every call made with a role's credentials is checked before it is sent."""
        original = botocore.client.BaseClient._make_api_call
        check = self

        def checked(client: Any, operation: str, params: dict[str, Any]) -> Any:
            credentials = client._request_signer._credentials
            role = check.by_access_key.get(credentials.access_key) if credentials else None
            if role is not None:
                service = client.meta.service_model.service_name
                region = client.meta.region_name
                for need in check.needs(service, operation, params, region, role.account):
                    check.require(role, need.action, need.resource, dict(need.context))
            if (client.meta.service_model.service_name, operation) == ("service-quotas", "ListServiceQuotas"):
                # not in moto; a fresh account answers no applied quota values (ListServiceQuotas "does not
                # retrieve" quotas without one: https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html)
                return {"Quotas": []}
            if operation == "CreateTrainingJob":
                check.training_requests[params["TrainingJobName"]] = params
            if (client.meta.service_model.service_name, operation) == ("ecr", "BatchCheckLayerAvailability"):
                # moto's ECR keeps image manifests, not blobs (no layer download or upload): every blob is
                # answered present, so a copy by digest (scripts/promote_image.py) copies the manifest only.
                return {
                    "layers": [
                        {"layerDigest": d, "layerAvailability": "AVAILABLE"} for d in params["layerDigests"]
                    ],
                    "failures": [],
                }
            if (client.meta.service_model.service_name, operation) == ("lambda", "Invoke") and check.invoker:
                return check.invoker(params["FunctionName"], json.loads(params.get("Payload") or b"null"))
            if (client.meta.service_model.service_name, operation) == ("sts", "AssumeRole"):
                return check._assumed(client, role, original(client, operation, params), params["RoleArn"])
            if operation == "DescribeEndpoint":
                answer = original(client, operation, params)
                config = original(
                    client, "DescribeEndpointConfig", {"EndpointConfigName": answer["EndpointConfigName"]}
                )
                return _endpoint_capture_summary(answer, config)
            if operation == "UpdateModelPackage" and "CustomerMetadataProperties" not in params:
                # AWS keeps a package's metadata when an update does not name it; moto's update_model_package
                # sets it to None (release approve would erase the metrics the registrar recorded)
                kept = original(
                    client, "DescribeModelPackage", {"ModelPackageName": params["ModelPackageArn"]}
                )
                if kept.get("CustomerMetadataProperties"):
                    params = {**params, "CustomerMetadataProperties": kept["CustomerMetadataProperties"]}
            return original(client, operation, _moto_gap(client, operation, params))

        botocore.client.BaseClient._make_api_call = checked  # type: ignore[method-assign]
        try:
            yield
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    def _assumed(
        self, client: Any, caller: Role | None, answer: dict[str, Any], role_arn: str
    ) -> dict[str, Any]:
        """After AssumeRole of a synthesized role (a gate assuming a stage's role): the trust policy judged, and the
        credentials it answered are that role's, so its calls are checked like any step's."""
        target = self.cloud.roles.get(role_arn)
        if target is not None and not self._service_assuming:
            caller_arn = caller.arn if caller else _caller_arn(client)
            self.require_assume(caller, caller_arn, target)
            self.by_access_key[answer["Credentials"]["AccessKeyId"]] = target
        return answer


def _caller_arn(client: Any) -> str:
    """The IAM ARN behind a client's credentials (an administrator's assumed role, as STS names it)."""
    import boto3

    credentials = client._request_signer._credentials
    arn = boto3.client(
        "sts",
        region_name=client.meta.region_name,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
    ).get_caller_identity()["Arn"]
    # arn:aws:sts::<account>:assumed-role/<role>/<session> is the role arn:aws:iam::<account>:role/<role>
    if ":assumed-role/" in arn:
        account, rest = arn.split("::", 1)[1].split(":assumed-role/")
        return f"arn:aws:iam::{account}:role/{rest.split('/')[0]}"
    return arn


def _endpoint_capture_summary(answer: dict[str, Any], endpoint_config: dict[str, Any]) -> dict[str, Any]:
    """DescribeEndpoint answers the endpoint's DataCaptureConfig as a DataCaptureConfigSummary (EnableCapture,
    CaptureStatus, CurrentSamplingPercentage, DestinationS3Uri, KmsKeyId:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfigSummary.html); moto answers part
    of the endpoint config's DataCaptureConfig, without the sampling percentage. Rewritten, from the endpoint config
    the endpoint runs, to the summary of a started capture."""
    config = endpoint_config.get("DataCaptureConfig") or {}
    if config.get("EnableCapture"):
        answer["DataCaptureConfig"] = {
            "EnableCapture": bool(config.get("EnableCapture")),
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": config["InitialSamplingPercentage"],
            "DestinationS3Uri": config.get("DestinationS3Uri", ""),
            "KmsKeyId": config.get("KmsKeyId", ""),
        }
    return answer


def _moto_gap(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Requests AWS accepts and moto does not, rewritten after the policy check: CreateModelPackage's
    ModelPackageGroupName "The name or Amazon Resource Name (ARN) of the model package group"
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html); moto knows names only."""
    # ListModelPackages too: its ModelPackageGroupName pattern allows the group's ARN
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html)
    if operation in ("CreateModelPackage", "ListModelPackages") and str(
        params.get("ModelPackageGroupName", "")
    ).startswith("arn:"):
        return {**params, "ModelPackageGroupName": params["ModelPackageGroupName"].rsplit("/", 1)[1]}
    return params


# ---------------------------------------------------------------------- call -> IAM action and resource
# Actions and resources as the Service Authorization Reference lists them per API
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html,
# .../list_amazonsagemaker.html, .../list_amazonsns.html, .../list_awskeymanagementservice.html).


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _get_object(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    return [
        Need("s3:GetObject", _object(p["Bucket"], p["Key"])),
        *check.kms_via(p["Bucket"], "kms:Decrypt", region),
    ]


def _put_object(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    return [
        Need("s3:PutObject", _object(p["Bucket"], p["Key"])),
        *check.kms_via(p["Bucket"], "kms:GenerateDataKey", region),
    ]


def _copy_object(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    source = p["CopySource"]
    if isinstance(source, str):
        bucket, _, key = unquote(source).lstrip("/").partition("/")
        key = key.split("?versionId=")[0]
    else:
        bucket, key = source["Bucket"], source["Key"]
    return [
        *_get_object(check, {"Bucket": bucket, "Key": key}, region, account),
        *_put_object(check, p, region, account),
    ]


def _list_bucket(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    return [Need("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", (("s3:prefix", p.get("Prefix", "")),))]


def _sagemaker(kind: str, name_param: str, action: str) -> Any:
    def needs(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
        return [
            Need(
                f"sagemaker:{action}", f"arn:aws:sagemaker:{region}:{account}:{kind}/{p[name_param].lower()}"
            )
        ]

    return needs


def _create_training_job(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    name = p["TrainingJobName"].lower()
    return [
        Need("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:{region}:{account}:training-job/{name}"),
        Need("iam:PassRole", p["RoleArn"], (("iam:PassedToService", "sagemaker.amazonaws.com"),)),
    ]


def _create_model_package(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    group = p["ModelPackageGroupName"].split("/")[-1].lower()
    return [
        Need("sagemaker:CreateModelPackage", f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/1")
    ]


def _list_model_packages(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    # no resource type: granted on "*" (Service Authorization Reference, Amazon SageMaker, ListModelPackages)
    return [Need("sagemaker:ListModelPackages", "*")]


def _describe_model_package(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    name = str(p["ModelPackageName"])
    arn = name if name.startswith("arn:") else f"arn:aws:sagemaker:{region}:{account}:model-package/{name}"
    return [Need("sagemaker:DescribeModelPackage", arn.lower())]


def _publish(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    topic = p["TopicArn"]
    key = check.cloud.topic_keys.get(topic)
    kms = []
    if key:  # publishing to an SSE topic: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
        via = (("kms:ViaService", f"sns.{region}.amazonaws.com"),)
        kms = [Need("kms:GenerateDataKey", key, via), Need("kms:Decrypt", key, via)]
    return [Need("sns:Publish", topic), *kms]


def _stack(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    """DescribeStacks / UpdateTerminationProtection: the stack ARN, arn:aws:cloudformation:<region>:<account>:
    stack/<name>/<id> (Service Authorization Reference, AWS CloudFormation, resource type "stack")."""
    name = p.get("StackName", "*")
    stack = check.cloud.stacks.get(name)
    arn = stack.stack_id if stack else f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*"
    action = "DescribeStacks" if "EnableTerminationProtection" not in p else "UpdateTerminationProtection"
    return [Need(f"cloudformation:{action}", arn)]


def _invoke_endpoint(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
    """SageMaker Runtime InvokeEndpoint is authorized as sagemaker:InvokeEndpoint on the endpoint
    (Service Authorization Reference, Amazon SageMaker AI: InvokeEndpoint, resource type "endpoint")."""
    return [
        Need(
            "sagemaker:InvokeEndpoint",
            f"arn:aws:sagemaker:{region}:{account}:endpoint/{p['EndpointName'].lower()}",
        )
    ]


def _parameter(action: str) -> Any:
    """arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash> (Service Authorization Reference,
    AWS Systems Manager, resource type "parameter")."""

    def needs(check: PolicyCheck, p: dict[str, Any], region: str, account: str) -> list[Need]:
        return [Need(f"ssm:{action}", f"arn:aws:ssm:{region}:{account}:parameter/{p['Name'].lstrip('/')}")]

    return needs


_MAPPERS: dict[tuple[str, str], Any] = {
    ("s3", "GetObject"): _get_object,
    ("s3", "HeadObject"): _get_object,
    ("s3", "PutObject"): _put_object,
    ("s3", "CreateMultipartUpload"): _put_object,
    ("s3", "CopyObject"): _copy_object,
    ("s3", "UploadPartCopy"): _copy_object,
    ("s3", "ListObjectsV2"): _list_bucket,
    ("s3", "ListObjects"): _list_bucket,
    ("sagemaker", "DescribeTrainingJob"): _sagemaker(
        "training-job", "TrainingJobName", "DescribeTrainingJob"
    ),
    ("sagemaker", "CreateTrainingJob"): _create_training_job,
    ("sagemaker", "CreateModelPackage"): _create_model_package,
    ("sagemaker", "ListModelPackages"): _list_model_packages,
    ("sagemaker", "DescribeModelPackage"): _describe_model_package,
    ("sns", "Publish"): _publish,
    ("cloudformation", "DescribeStacks"): _stack,
    ("cloudformation", "UpdateTerminationProtection"): _stack,
    ("sagemaker", "DescribeEndpoint"): _sagemaker("endpoint", "EndpointName", "DescribeEndpoint"),
    ("sagemaker", "DescribeEndpointConfig"): _sagemaker(
        "endpoint-config", "EndpointConfigName", "DescribeEndpointConfig"
    ),
    ("sagemaker", "DescribeModel"): _sagemaker("model", "ModelName", "DescribeModel"),
    ("sagemaker-runtime", "InvokeEndpoint"): _invoke_endpoint,
    ("sts", "AssumeRole"): lambda check, p, region, account: [],  # judged on the trust policy: _assumed
    ("ssm", "PutParameter"): _parameter("PutParameter"),
    ("ssm", "GetParameter"): _parameter("GetParameter"),
    ("ssm", "GetParameterHistory"): _parameter("GetParameterHistory"),
}
