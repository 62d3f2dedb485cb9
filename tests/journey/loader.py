"""A deploy of synthesized templates into moto, for the journey: the resources later steps touch, created from
``cdk.out`` (never hand-written), with their policies recorded for the policy check (tests/journey/policy.py).

Created in moto: KMS keys (+ key policies), S3 buckets (+ default encryption; bucket policies recorded only, see _bucket_policy), ECR repositories
(+ repository policies), IAM roles (+ inline, ``AWS::IAM::Policy`` and managed policies), SNS topics, Lambda
functions (their environment: the handlers run in-process with it), the model package group, SSM parameters, and
one CloudFormation stack per template carrying its resolved outputs (what the operator commands read), and the
SageMaker Model, EndpointConfig and Endpoint (what ``verify`` describes; SageMaker's part, starting an instance of the
Model, is the journey's: tests/journey/instances.py). Every other type is skipped; a ``Ref`` to a skipped resource answers a name, a ``Fn::GetAtt`` on one, or an
intrinsic the loader does not know, fails naming the stack, the resource and the expression.

Deploying a template again updates what changed (policies, function environment, new models: replaced models are
retained, as the Serving stack asks); ``destroy`` deletes what CloudFormation deletes (``DeletionPolicy`` other than
``Retain``), emptying buckets and repositories first as the templates' auto-delete/``EmptyOnDelete`` say.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.scripts.aws_fakes import stack_with_outputs

_SKIP = object()  # AWS::NoValue


class LoaderError(AssertionError):
    """The loader cannot create or resolve something a template asks for."""


@dataclass
class Role:
    arn: str
    name: str
    account: str
    logical_id: str
    stack: str
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)  # policy name -> document
    managed: dict[str, dict[str, Any]] = field(default_factory=dict)  # policy arn -> document
    trust: dict[str, Any] = field(default_factory=dict)  # AssumeRolePolicyDocument

    @property
    def label(self) -> str:
        return f"{self.stack}/{self.logical_id}"

    def documents(self) -> list[dict[str, Any]]:
        return [*self.inline.values(), *self.managed.values()]

    def named_documents(self) -> dict[str, dict[str, Any]]:
        """Identity policies by name (inline policy name, managed policy ARN): what the simulator reports on."""
        return {**self.inline, **self.managed}


@dataclass(frozen=True)
class ServingModel:
    stack: str
    logical_id: str
    image: str
    model_data_url: str
    role_arn: str
    environment: tuple[tuple[str, str], ...] = ()


@dataclass
class Stack:
    name: str  # CloudFormation stack name, e.g. Dev-Data
    account: str
    region: str
    template: dict[str, Any]
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def stack_id(self) -> str:
        suffix = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account}/{self.name}")
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.name}/{suffix}"


class Cloud:
    """Every account the journey deploys into, in one moto, and what the policy check needs to know of it."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.stacks: dict[str, Stack] = {}
        self.exports: dict[str, str] = {}
        self.roles: dict[str, Role] = {}  # by ARN
        self.bucket_accounts: dict[str, str] = {}
        self.bucket_keys: dict[str, str] = {}  # bucket -> KMS key ARN of its default encryption
        self.bucket_policies: dict[str, dict[str, Any]] = {}
        self.repository_policies: dict[str, dict[str, Any]] = {}  # repository ARN -> policy
        self.key_policies: dict[str, dict[str, Any]] = {}  # key ARN -> policy
        self.topic_keys: dict[str, str] = {}  # topic ARN -> key ARN
        self.functions: dict[str, dict[str, str]] = {}  # function name -> environment
        self.models: list[ServingModel] = []
        self._admins: dict[str, boto3.Session] = {}

    # ------------------------------------------------------------------ sessions
    def admin(self, account: str) -> boto3.Session:
        """An administrator of ``account`` (the deploying identity: CloudFormation's, the operator's)."""
        if account not in self._admins:
            sts = boto3.client("sts", region_name=self.region)
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/journey-admin", RoleSessionName="admin"
            )["Credentials"]
            self._admins[account] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.region,
            )
        return self._admins[account]

    def credentials_of(self, role: Role) -> dict[str, str]:
        """Credentials of ``role`` (STS AssumeRole in its account), as the service that runs as it gets them."""
        creds = (
            self.admin(role.account)
            .client("sts")
            .assume_role(RoleArn=role.arn, RoleSessionName=role.name[:60])["Credentials"]
        )
        return {
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }

    def role(self, stack: str, logical_prefix: str) -> Role:
        """The role of ``stack`` whose logical id starts with ``logical_prefix`` (e.g. "TrainingRole")."""
        found = [
            r for r in self.roles.values() if r.stack == stack and r.logical_id.startswith(logical_prefix)
        ]
        if len(found) != 1:
            raise LoaderError(
                f"{stack}: expected one role {logical_prefix}*, found {[r.logical_id for r in found]}"
            )
        return found[0]

    # ------------------------------------------------------------------ deploy
    def deploy(self, name: str, template: dict[str, Any], *, account: str) -> Stack:
        """Create (or update) stack ``name`` from ``template`` in ``account``."""
        previous = self.stacks.get(name)
        stack = Stack(name=name, account=account, region=self.region, template=template)
        if previous is not None:  # an update keeps the physical resources of unchanged logical ids
            stack.physical = dict(previous.physical)
            stack.attributes = dict(previous.attributes)
        self.stacks[name] = stack
        deployer = _Deployer(self, stack, previous)
        for logical_id in template["Resources"]:
            deployer.ensure(logical_id)
        for key, output in template.get("Outputs", {}).items():
            value = deployer.resolve(output["Value"], f"Outputs.{key}")
            stack.outputs[key] = value
            if "Export" in output:
                self.exports[deployer.resolve(output["Export"]["Name"], f"Outputs.{key}.Export")] = value
        cfn = self.admin(account).client("cloudformation")
        if previous is not None:
            cfn.delete_stack(StackName=name)
        stack_with_outputs(cfn, name, stack.outputs)
        return stack

    def destroy(self, name: str) -> None:
        """``cdk destroy``: delete what CloudFormation deletes; keep what ``DeletionPolicy: Retain`` keeps."""
        stack = self.stacks.pop(name)
        admin = self.admin(stack.account)
        for logical_id, resource in reversed(list(stack.template["Resources"].items())):
            if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"):
                continue
            physical = stack.physical.get(logical_id)
            if physical is None:
                continue
            _delete(self, admin, resource, physical, stack, logical_id)
        admin.client("cloudformation").delete_stack(StackName=name)


class _Deployer:
    def __init__(self, cloud: Cloud, stack: Stack, previous: Stack | None) -> None:
        self.cloud = cloud
        self.stack = stack
        self.previous = previous
        self.resources: dict[str, Any] = stack.template["Resources"]
        self.admin = cloud.admin(stack.account)
        self.done: set[str] = set()

    # -------------------------------------------------------------- intrinsics
    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v, where) for v in value]
            return [v for v in items if v is not _SKIP]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, arg)] = value.items()
            if key == "Ref":
                return self._ref(arg, where)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical, attribute, where)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts, where))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items, where)[int(self.resolve(index, where))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text, where)).split(sep)
            if key == "Fn::Sub":
                return self._sub(arg, where)
            if key == "Fn::ImportValue":
                name = self.resolve(arg, where)
                if name not in self.cloud.exports:
                    raise LoaderError(
                        f"{self.stack.name} {where}: Fn::ImportValue {name!r}: no stack exports it "
                        "(deploy the exporting stack first)"
                    )
                return self.cloud.exports[name]
            if key.startswith("Fn::") or key == "Condition":
                raise LoaderError(
                    f"{self.stack.name} {where}: the journey loader cannot resolve {key}: {arg}"
                )
        return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}

    def _pseudo(self, name: str) -> Any:
        return {
            "AWS::AccountId": self.stack.account,
            "AWS::Region": self.stack.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": self.stack.stack_id,
            "AWS::StackName": self.stack.name,
            "AWS::NoValue": _SKIP,
        }.get(name)

    def _ref(self, name: str, where: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.stack.template.get("Parameters", {}):
            default = self.stack.template["Parameters"][name].get("Default")
            if default is None:
                raise LoaderError(f"{self.stack.name} {where}: parameter {name} has no default")
            return default
        if name not in self.resources:
            raise LoaderError(f"{self.stack.name} {where}: Ref to unknown resource {name}")
        self.ensure(name)
        return self.stack.physical[name]

    def _get_att(self, logical: str, attribute: str, where: str) -> str:
        if logical not in self.resources:
            raise LoaderError(f"{self.stack.name} {where}: Fn::GetAtt on unknown resource {logical}")
        self.ensure(logical)
        try:
            return self.stack.attributes[(logical, attribute)]
        except KeyError:
            raise LoaderError(
                f"{self.stack.name} {where}: Fn::GetAtt {logical}.{attribute}: the journey loader does not create "
                f"{self.resources[logical]['Type']} (or that attribute of it)"
            ) from None

    def _sub(self, arg: Any, where: str) -> str:
        import re

        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self.resolve(v, where) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return self._get_att(logical, attribute, where)
            return str(self._ref(name, where))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    # -------------------------------------------------------------- resources
    def ensure(self, logical_id: str) -> None:
        if logical_id in self.done:
            return
        self.done.add(logical_id)
        resource = self.resources[logical_id]
        kind = resource["Type"]
        props = resource.get("Properties", {})
        where = f"Resources.{logical_id}"
        existing = self.stack.physical.get(logical_id)
        create = _CREATORS.get(kind)
        if create is None:  # not needed by any step: a name for Refs, nothing in moto
            self.stack.physical.setdefault(logical_id, f"{self.stack.name}-{logical_id}")
            return
        create(self, logical_id, props, where, existing)

    def name_for(self, logical_id: str, limit: int, lower: bool = False) -> str:
        suffix = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack.account}/{self.stack.name}/{logical_id}").hex[
            :8
        ]
        base = f"{self.stack.name}-{logical_id}"[: limit - 9]
        name = f"{base}-{suffix}"
        return name.lower() if lower else name


def _key(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    policy = d.resolve(props.get("KeyPolicy", {}), f"{where}.KeyPolicy")
    kms = d.admin.client("kms")
    if existing is None:
        key = kms.create_key(Policy=json.dumps(policy), Description=props.get("Description", ""))[
            "KeyMetadata"
        ]
        d.stack.physical[logical] = key["KeyId"]
        d.stack.attributes[(logical, "Arn")] = key["Arn"]
        d.stack.attributes[(logical, "KeyId")] = key["KeyId"]
    else:
        kms.put_key_policy(KeyId=existing, PolicyName="default", Policy=json.dumps(policy))
    d.cloud.key_policies[d.stack.attributes[(logical, "Arn")]] = policy


def _bucket(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    name = existing or d.name_for(logical, 63, lower=True)
    s3 = d.admin.client("s3")
    if existing is None:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": d.stack.region})
        d.stack.physical[logical] = name
        d.stack.attributes[(logical, "Arn")] = f"arn:aws:s3:::{name}"
        d.stack.attributes[(logical, "DomainName")] = f"{name}.s3.amazonaws.com"
        d.stack.attributes[(logical, "RegionalDomainName")] = f"{name}.s3.{d.stack.region}.amazonaws.com"
    d.cloud.bucket_accounts[name] = d.stack.account
    encryption = d.resolve(props.get("BucketEncryption"), f"{where}.BucketEncryption")
    if encryption:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"],
                **({"BucketKeyEnabled": r["BucketKeyEnabled"]} if "BucketKeyEnabled" in r else {}),
            }
            for r in encryption["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        for rule in rules:
            key = rule["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
            if key:
                d.cloud.bucket_keys[name] = key


def _bucket_policy(
    d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None
) -> None:
    bucket = d.resolve(props["Bucket"], f"{where}.Bucket")
    policy = d.resolve(props["PolicyDocument"], f"{where}.PolicyDocument")
    # Recorded for the simulator, not put into moto: moto applies a bucket policy's Deny statements ignoring
    # their conditions (moto/s3/responses.py, bucket.get_permission), so the "deny aws:SecureTransport false"
    # statement every bucket carries would deny every request.
    d.cloud.bucket_policies[bucket] = policy
    d.stack.physical[logical] = bucket


def _repository(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    ecr = d.admin.client("ecr")
    name = existing or d.name_for(logical, 100, lower=True)
    if existing is None:
        arn = ecr.create_repository(repositoryName=name)["repository"]["repositoryArn"]
        d.stack.physical[logical] = name
        d.stack.attributes[(logical, "Arn")] = arn
        d.stack.attributes[(logical, "RepositoryUri")] = (
            f"{d.stack.account}.dkr.ecr.{d.stack.region}.amazonaws.com/{name}"
        )
    arn = d.stack.attributes[(logical, "Arn")]
    policy = d.resolve(props.get("RepositoryPolicyText"), f"{where}.RepositoryPolicyText")
    if policy:
        ecr.set_repository_policy(repositoryName=name, policyText=json.dumps(policy))
        d.cloud.repository_policies[arn] = policy
    else:
        d.cloud.repository_policies.pop(arn, None)


def _role(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    iam = d.admin.client("iam")
    name = existing or d.name_for(logical, 64)
    trust = d.resolve(props["AssumeRolePolicyDocument"], f"{where}.AssumeRolePolicyDocument")
    if existing is None:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        d.stack.physical[logical] = name
        d.stack.attributes[(logical, "Arn")] = arn
        d.stack.attributes[(logical, "RoleId")] = (
            f"AROA{uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:17].upper()}"
        )
    arn = d.stack.attributes[(logical, "Arn")]
    role = Role(
        arn=arn, name=name, account=d.stack.account, logical_id=logical, stack=d.stack.name, trust=trust
    )
    old = d.cloud.roles.get(arn)
    for policy_name in old.inline if old else {}:
        iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    for policy in d.resolve(props.get("Policies", []), f"{where}.Policies"):
        role.inline[policy["PolicyName"]] = policy["PolicyDocument"]
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    for policy_arn in d.resolve(props.get("ManagedPolicyArns", []), f"{where}.ManagedPolicyArns"):
        role.managed[policy_arn] = _aws_managed_policy(policy_arn, f"{d.stack.name} {where}")
    d.cloud.roles[arn] = role
    # AWS::IAM::Policy resources naming this role attach after it exists
    for other, resource in d.resources.items():
        if resource["Type"] == "AWS::IAM::Policy":
            d.ensure(other)


def _aws_managed_policy(arn: str, where: str) -> dict[str, Any]:
    """An AWS managed policy's document, from moto's copy of them (loading them into moto's IAM for every account
    costs ~10 s each; moto does not evaluate them anyway)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    name = arn.removeprefix("arn:aws:iam::aws:policy/")
    data = json.loads(aws_managed_policies_data)
    key = name.rsplit("/", 1)[-1]
    if key not in data:
        raise LoaderError(f"{where}: AWS managed policy {arn} unknown to moto's copy")
    document = data[key]["Document"]
    return json.loads(document) if isinstance(document, str) else dict(document)


def _queue(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    if existing is None:
        sqs = d.admin.client("sqs")
        url = sqs.create_queue(QueueName=d.name_for(logical, 80))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        d.stack.physical[logical] = url
        d.stack.attributes[(logical, "Arn")] = arn
        d.stack.attributes[(logical, "QueueName")] = arn.rsplit(":", 1)[1]


def _policy(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    iam = d.admin.client("iam")
    document = d.resolve(props["PolicyDocument"], f"{where}.PolicyDocument")
    name = props["PolicyName"]
    for role_name in d.resolve(props.get("Roles", []), f"{where}.Roles"):
        role = next((r for r in d.cloud.roles.values() if r.name == role_name), None)
        if role is None:
            raise LoaderError(f"{d.stack.name} {where}: role {role_name} was not created by the loader")
        iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
        role.inline[name] = document
    d.stack.physical[logical] = name


def _topic(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    sns = d.admin.client("sns")
    if existing is None:
        attributes = {}
        key = d.resolve(props.get("KmsMasterKeyId"), f"{where}.KmsMasterKeyId")
        if key:
            attributes["KmsMasterKeyId"] = key
        arn = sns.create_topic(Name=d.name_for(logical, 256), Attributes=attributes)["TopicArn"]
        d.stack.physical[logical] = arn
        d.stack.attributes[(logical, "TopicArn")] = arn
        d.stack.attributes[(logical, "TopicName")] = arn.rsplit(":", 1)[1]
        if key:
            d.cloud.topic_keys[arn] = key


def _function(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    import io
    import zipfile

    env = d.resolve(props.get("Environment", {}).get("Variables", {}), f"{where}.Environment")
    role = d.resolve(props["Role"], f"{where}.Role")
    lam = d.admin.client("lambda")
    name = existing or d.name_for(logical, 64)
    if existing is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.py", "# the journey runs the handler in-process\n")
        arn = lam.create_function(
            FunctionName=name, Runtime=props.get("Runtime", "python3.12"), Role=role,
            Handler=props["Handler"], Code={"ZipFile": buffer.getvalue()}, Environment={"Variables": env},
        )["FunctionArn"]  # fmt: skip
        d.stack.physical[logical] = name
        d.stack.attributes[(logical, "Arn")] = arn
    else:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
    d.cloud.functions[name] = {"__role__": role, "__handler__": props["Handler"], **env}


def _model_package_group(
    d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None
) -> None:
    name = d.resolve(props["ModelPackageGroupName"], f"{where}.ModelPackageGroupName")
    sm = d.admin.client("sagemaker")
    if existing is None:
        arn = sm.create_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
        d.stack.physical[logical] = arn
        d.stack.attributes[(logical, "ModelPackageGroupArn")] = arn
        d.stack.attributes[(logical, "ModelPackageGroupName")] = name


def _parameter(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    name = d.resolve(props.get("Name"), f"{where}.Name") or existing or f"/{d.name_for(logical, 100)}"
    value = d.resolve(props["Value"], f"{where}.Value")
    d.admin.client("ssm").put_parameter(
        Name=name, Value=value, Type=props.get("Type", "String"), Overwrite=True
    )
    d.stack.physical[logical] = name


def _replaced_name(d: _Deployer, logical: str, props: dict[str, Any]) -> str:
    """The physical name of a resource CloudFormation replaces when its properties change (Model, EndpointConfig:
    "Update requires: Replacement"): a new name per content, so the retained old one keeps its own. SageMaker names
    are made lower case here (as are endpoints'), so the ARNs moto answers match the ones the policy check asks for
    (tests/journey/policy.py _sagemaker)."""
    import hashlib

    digest = hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:8]
    return d.name_for(f"{logical}-{digest}", 63, lower=True)


def _model(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    resolved = {
        "ExecutionRoleArn": d.resolve(props["ExecutionRoleArn"], f"{where}.ExecutionRoleArn"),
        "PrimaryContainer": d.resolve(props.get("PrimaryContainer", {}), f"{where}.PrimaryContainer"),
    }
    container = resolved["PrimaryContainer"]
    model = ServingModel(
        stack=d.stack.name,
        logical_id=logical,
        image=container.get("Image", ""),
        model_data_url=container.get("ModelDataUrl", ""),
        role_arn=resolved["ExecutionRoleArn"],
        environment=tuple(sorted(container.get("Environment", {}).items())),
    )
    # a replaced Model is retained (the Serving stack's UpdateReplacePolicy); the one deployed last comes last
    if model in d.cloud.models:
        d.cloud.models.remove(model)
    d.cloud.models.append(model)
    name = _replaced_name(d, logical, resolved)
    d.admin.client("sagemaker").create_model(ModelName=name, **resolved)
    d.stack.physical[logical] = f"arn:aws:sagemaker:{d.stack.region}:{d.stack.account}:model/{name}"
    d.stack.attributes[(logical, "ModelName")] = name


def _endpoint_config(
    d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None
) -> None:
    from unittest import mock

    from moto.sagemaker.models import FakeEndpointConfig

    keep = ("ProductionVariants", "DataCaptureConfig", "KmsKeyId")
    resolved = {k: d.resolve(props[k], f"{where}.{k}") for k in keep if k in props}
    name = _replaced_name(d, logical, resolved)
    # moto's instance-type list (moto/sagemaker/models.py validate_instance_type) predates ml.g5 and ml.c6i
    with mock.patch.object(FakeEndpointConfig, "validate_instance_type", lambda self, kind: None):
        d.admin.client("sagemaker").create_endpoint_config(EndpointConfigName=name, **resolved)
    d.stack.physical[logical] = f"arn:aws:sagemaker:{d.stack.region}:{d.stack.account}:endpoint-config/{name}"
    d.stack.attributes[(logical, "EndpointConfigName")] = name


def _endpoint(d: _Deployer, logical: str, props: dict[str, Any], where: str, existing: str | None) -> None:
    """Created, or updated in place to the new config (UpdateEndpoint: moto has none, so delete and create under
    the same name). ``Ref`` answers the endpoint's ARN ("Ref returns the Amazon Resource Name (ARN) of the
    endpoint", CloudFormation template reference, AWS::SageMaker::Endpoint, Return values)."""
    config = d.resolve(props["EndpointConfigName"], f"{where}.EndpointConfigName")
    name = d.stack.attributes.get((logical, "EndpointName")) or d.name_for(logical, 63, lower=True)
    sagemaker = d.admin.client("sagemaker")
    if existing is not None:
        sagemaker.delete_endpoint(EndpointName=name)
    arn = sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)["EndpointArn"]
    d.stack.physical[logical] = arn
    d.stack.attributes[(logical, "EndpointName")] = name


_CREATORS = {
    "AWS::KMS::Key": _key,
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::ECR::Repository": _repository,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::SNS::Topic": _topic,
    "AWS::SQS::Queue": _queue,
    "AWS::Lambda::Function": _function,
    "AWS::SageMaker::ModelPackageGroup": _model_package_group,
    "AWS::SSM::Parameter": _parameter,
    "AWS::SageMaker::Model": _model,
    "AWS::SageMaker::EndpointConfig": _endpoint_config,
    "AWS::SageMaker::Endpoint": _endpoint,
}


def _delete(cloud: Cloud, admin: boto3.Session, resource: dict[str, Any], physical: str, stack: Stack,
            logical_id: str) -> None:  # fmt: skip
    kind = resource["Type"]
    if kind == "AWS::S3::Bucket":
        s3 = admin.resource("s3")
        bucket = s3.Bucket(physical)
        bucket.object_versions.delete()
        bucket.delete()
        for table in (cloud.bucket_accounts, cloud.bucket_keys, cloud.bucket_policies):
            table.pop(physical, None)
    elif kind == "AWS::S3::BucketPolicy":
        cloud.bucket_policies.pop(physical, None)
    elif kind == "AWS::ECR::Repository":
        admin.client("ecr").delete_repository(repositoryName=physical, force=True)
        cloud.repository_policies.pop(stack.attributes[(logical_id, "Arn")], None)
    elif kind == "AWS::KMS::Key":
        admin.client("kms").schedule_key_deletion(KeyId=physical, PendingWindowInDays=7)
        cloud.key_policies.pop(stack.attributes[(logical_id, "Arn")], None)
    elif kind == "AWS::IAM::Role":
        cloud.roles.pop(stack.attributes[(logical_id, "Arn")], None)
    elif kind == "AWS::SageMaker::Model":
        cloud.models = [m for m in cloud.models if (m.stack, m.logical_id) != (stack.name, logical_id)]
    elif kind == "AWS::SageMaker::Endpoint":
        admin.client("sagemaker").delete_endpoint(EndpointName=stack.attributes[(logical_id, "EndpointName")])
