"""cdk-nag wiring: the packs every synth runs, and ``acknowledge`` for one finding at a time next to its resource.

cdk-nag 3.x is a CDK validation plugin (``Validations.of(app).add_plugins``); an acknowledgement is recorded on
the construct it sits on and covers that construct and its children. v3 matches findings exactly: an IAM5
finding is ``AwsSolutions-IAM5[Resource::arn:...]``, so pass ``applies_to`` for such findings, or use
``acknowledge_resource`` when the ARN holds tokens (account, region, partition, another stack's resource).
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import jsii
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct, IValidation

_MIN_REASON = 20  # a reason must say why it is safe, not just "ok"


def add_checks(app: cdk.Stage) -> None:
    """Run the AwsSolutions and Serverless packs over ``app`` on every synth (errors fail the synth)."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(construct: IConstruct, rule_id: str, reason: str, *, applies_to: str | None = None) -> None:
    """Acknowledge one cdk-nag finding on ``construct`` (and its children) with a reason that says why it is safe.

    ``applies_to`` names the finding of a multi-finding rule, e.g. ``Resource::arn:aws:s3:::bucket/*`` for
    ``AwsSolutions-IAM5``; it becomes ``<rule_id>[<applies_to>]``.
    """
    if len(reason.strip()) < _MIN_REASON:
        raise ValueError(f"acknowledge({rule_id}): the reason must say why it is safe, got '{reason}'")
    finding = f"{rule_id}[{applies_to}]" if applies_to else rule_id
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def flatten_cfn_reference(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in a finding id (port of its ``flattenCfnReference``):
    ``{"Ref": "AWS::Region"}`` -> ``<AWS::Region>``, Join/Sub/GetAtt/ImportValue likewise, anything else as JSON."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_cfn_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


@jsii.implements(IValidation)
class _LateAcknowledgement:
    """Computes a finding id that holds tokens (ARNs with account/region, cross-stack references) once CDK has
    resolved them: node validations run after reference resolution and before cdk-nag reads acknowledgements."""

    def __init__(self, construct: IConstruct, rule_id: str, reason: str, kind: str, value: str) -> None:
        self._args = (construct, rule_id, reason, kind, value)

    def validate(self) -> list[str]:
        construct, rule_id, reason, kind, value = self._args
        rendered = flatten_cfn_reference(cdk.Stack.of(construct).resolve(value))
        acknowledge(construct, rule_id, reason, applies_to=f"{kind}::{rendered}")
        return []


def acknowledge_resource(
    construct: IConstruct, rule_id: str, reason: str, *, resource: str, kind: str = "Resource"
) -> None:
    """Acknowledge ``<rule_id>[<kind>::<resource>]`` on ``construct`` where ``resource`` may hold tokens, e.g.
    ``stack.format_arn(service="logs", resource="log-group", ...)`` or ``f"{bucket.bucket_arn}/checkpoints/*"``.

    Prefer this to a hand-written ``applies_to`` for any ARN: its rendering differs between an env-agnostic stage
    (``arn:<AWS::Partition>:...``) and one with account/region set (``arn:aws:logs:eu-west-1:...``).
    """
    if len(reason.strip()) < _MIN_REASON:
        raise ValueError(
            f"acknowledge_resource({rule_id}): the reason must say why it is safe, got '{reason}'"
        )
    construct.node.add_validation(_LateAcknowledgement(construct, rule_id, reason, kind, resource))
