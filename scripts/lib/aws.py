"""The AWS side every operator command shares: a session (named profile errors), a session in another account
(an assumed role), and :func:`stack_outputs`, the one reader of a stack's outputs: it names why one is missing (never
deployed, still deploying, last deploy failed, an older version). The release gates, which report on a stack as they
find it, parse DescribeStacks' answer with :func:`outputs_of`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scripts.lib.cli import OperatorError, aws_error_message

# A stack in one of these answers with no usable outputs (scripts reading it say why).
_FAILED_STATUSES = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_FAILED",
        "IMPORT_ROLLBACK_FAILED",
    }
)


def aws_session(*, profile: str | None = None, region: str | None = None) -> Any:
    """A boto3 session; an unknown profile is an OperatorError naming it (boto3 raises at construction)."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise OperatorError(aws_error_message(exc) or str(exc)) from None


def deploy_hint(stack_name: str) -> str:
    """The cdk command that deploys ``<Stage>-<Stack>`` (its construct path is ``<Stage>/<Stack>``)."""
    return f"npx cdk deploy '{stack_name.replace('-', '/', 1)}'"


def outputs_of(described: Mapping[str, Any]) -> dict[str, str]:
    """{key: value} of one stack of a DescribeStacks answer (for the gates that report on a stack as they find it;
    every other reader goes through :func:`stack_outputs`)."""
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", []) or []}


def stack_outputs(cloudformation: Any, stack_name: str, *, required: Sequence[str] = ()) -> dict[str, str]:
    """Outputs of a deployed stack as {key: value}; a missing, failed or outdated stack is an OperatorError.

    The message names the real cause: never deployed, still deploying, first deploy rolled back (the stack must be
    deleted before the next try), last update rolled back, or deployed from an older version of this repository.
    """
    from botocore.exceptions import ClientError

    try:
        [described] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        if "does not exist" in message:
            raise OperatorError(
                f"stack {stack_name} does not exist in this account/region: deploy it first ({deploy_hint(stack_name)})"
            ) from None
        raise
    status = str(described.get("StackStatus", ""))
    outputs = outputs_of(described)
    if status == "ROLLBACK_COMPLETE":
        raise OperatorError(
            f"stack {stack_name}: its first deploy failed and was rolled back (ROLLBACK_COMPLETE); see its events "
            f"in the CloudFormation console, delete the stack, fix the cause and deploy again"
        )
    if status in {"DELETE_IN_PROGRESS", "DELETE_FAILED"}:
        raise OperatorError(
            f"stack {stack_name} is being deleted or its deletion failed ({status}); "
            f"finish or retry the deletion, then deploy it again ({deploy_hint(stack_name)})"
        )
    if status in _FAILED_STATUSES:
        raise OperatorError(
            f"stack {stack_name}: its last deploy failed ({status}); "
            f"see its events in the CloudFormation console, fix the cause and deploy again"
        )
    missing = [key for key in required if key not in outputs]
    if not missing:
        return outputs
    what = f"no output {', '.join(missing)}" if outputs else "no outputs yet"
    if status == "REVIEW_IN_PROGRESS":
        cause = f"it was never deployed (a change set waits to be executed): deploy it ({deploy_hint(stack_name)})"
    elif status.endswith("_IN_PROGRESS"):
        cause = f"it is still deploying ({status}): wait until it finishes, then retry"
    elif status == "UPDATE_ROLLBACK_COMPLETE":
        cause = (
            "its last deploy failed and was rolled back (UPDATE_ROLLBACK_COMPLETE): see its events in the "
            "CloudFormation console, fix the cause and deploy again"
        )
    else:
        cause = f"deploy the current version of the stage first ({deploy_hint(stack_name)}; status {status})"
    raise OperatorError(f"stack {stack_name} has {what}; {cause}")


def stack_output(cloudformation: Any, stack_name: str, key: str) -> str:
    """One output of a deployed stack (:func:`stack_outputs` with ``required=[key]``)."""
    return stack_outputs(cloudformation, stack_name, required=[key])[key]


def stage_config(stage: str) -> Any:
    """The validated config of a stage (infra/stages.py), for the commands that need more than its name."""
    from infra.config import (
        load_stages,  # late, and without the CDK: only commands that need a config load it
    )
    from infra.stages import STAGES

    configs = load_stages(STAGES)
    if stage not in configs:
        raise OperatorError(f"--stage {stage}: unknown stage; expected one of {list(configs)}")
    return configs[stage]


def assumed(session: Any, role_arn: str | None, *, name: str) -> Any:
    """A session in the stage's account: ``role_arn`` assumed, or ``session`` itself."""
    if not role_arn:
        return session
    import boto3

    credentials = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=session.region_name,
    )
