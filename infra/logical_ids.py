"""Logical IDs that survive moving resources into a construct.

CDK derives a resource's logical ID from its construct path, and CloudFormation replaces a resource whose logical ID
changes: a new SNS topic ARN whose e-mail subscribers must confirm again, EventBridge rules and alarms deleted and
re-created. ``keep_logical_ids`` gives every CloudFormation element under a construct the ID it had at its old path.
``unique_id`` is CDK's own ``makeUniqueId`` (aws-cdk-lib ``core/lib/private/uniqueid.ts``, the basis of every logical
ID CDK allocates); tests/infra/test_logical_ids.py checks it against the IDs CDK allocates itself.

What it cannot keep: construct ids that CDK derives from another construct's full path (EventBridge's Lambda
permissions and SQS policy Sids, SNS-to-SQS subscriptions) follow the new path; wrap the other side with CDK's
transparent ``Default`` id instead where those must stay.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import aws_cdk as cdk
from constructs import IConstruct

_HIDDEN = "Default"  # left out of the ID altogether
_HIDDEN_FROM_HUMAN = "Resource"  # left out of the readable part, kept in the hash
_MAX_ID = 255
_MAX_HUMAN = 240
_NON_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


def unique_id(components: Sequence[str]) -> str:
    """The logical ID CDK allocates to an element at ``components`` (its path below its stack)."""
    kept = [c for c in components if c != _HIDDEN]
    if not kept:
        raise ValueError("a logical ID needs at least one path component that is not 'Default'")
    if len(kept) == 1 and len(single := _NON_ALPHANUMERIC.sub("", kept[0])) <= _MAX_ID:
        return single
    digest = hashlib.md5("/".join(kept).encode(), usedforsecurity=False).hexdigest()[:8].upper()
    readable: list[str] = []
    for component in kept:  # a component that ends the previous one adds nothing to read
        if not readable or not readable[-1].endswith(component):
            readable.append(component)
    human = "".join(_NON_ALPHANUMERIC.sub("", c) for c in readable if c != _HIDDEN_FROM_HUMAN)
    return human[:_MAX_HUMAN] + digest


def stack_path(construct: IConstruct) -> list[str]:
    """The ids from below the construct's stack down to the construct itself."""
    stack = cdk.Stack.of(construct)
    scopes = construct.node.scopes
    start = next(i for i, scope in enumerate(scopes) if scope is stack or scope.node.path == stack.node.path)
    return [scope.node.id for scope in scopes[start + 1 :]]


def keep_logical_ids(construct: IConstruct, *, old_path: Sequence[str] = ()) -> None:
    """Give every CloudFormation element under ``construct`` the logical ID it had when what ``construct`` now holds
    sat at ``old_path`` below the stack (empty: directly in the stack)."""
    new_prefix = len(stack_path(construct))
    for child in construct.node.find_all():
        if cdk.CfnElement.is_cfn_element(child):
            assert isinstance(child, cdk.CfnElement)
            child.override_logical_id(unique_id([*old_path, *stack_path(child)[new_prefix:]]))
