"""Acknowledging cdk-nag findings whose text holds a cross-stack reference (e.g. ``<bucket arn>/checkpoints/*``).

cdk-nag 3 matches an acknowledgement by the exact finding text, and a reference to another stack only gets its
final form (``{"Fn::GetStackOutput": ...}``) when CDK prepares the app, after our constructors ran. So the text is
computed in a construct validation, which CDK runs after references are resolved and before the validation plugins
(cdk-nag) read the acknowledgements. The rendering is cdk-nag's ``flattenCfnReference``, ported.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import jsii
from constructs import IConstruct, IValidation

from infra.nag import acknowledge


def flatten_cfn_reference(node: Any) -> str:
    """cdk-nag's rendering of a resolved CloudFormation value (Join/Sub/GetAtt/ImportValue/Ref, else JSON)."""
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
    def __init__(self, construct: IConstruct, rule_id: str, reason: str, kind: str, value: str) -> None:
        self._args = (construct, rule_id, reason, kind, value)

    def validate(self) -> list[str]:
        construct, rule_id, reason, kind, value = self._args
        rendered = flatten_cfn_reference(cdk.Stack.of(construct).resolve(value))
        acknowledge(construct, rule_id, reason, applies_to=f"{kind}::{rendered}")
        return []


def acknowledge_resource(construct: IConstruct, rule_id: str, reason: str, *, resource: str) -> None:
    """Acknowledge ``<rule_id>[Resource::<resource>]`` on ``construct``; ``resource`` may hold tokens."""
    construct.node.add_validation(_LateAcknowledgement(construct, rule_id, reason, "Resource", resource))
