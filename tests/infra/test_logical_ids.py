"""infra/logical_ids.py: ``unique_id`` allocates exactly the IDs CDK allocates, and ``keep_logical_ids`` makes a
construct that wraps existing resources leave the template as it was. Plain CDK stacks, no stage; ~1 s."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.logical_ids import keep_logical_ids, stack_path, unique_id


def _resources(scope: Construct) -> None:
    """Resources whose paths exercise every rule: 'Resource' children, nested L2s, repeated and odd ids."""
    sns.Topic(scope, "Topic", enforce_ssl=True)
    sqs.Queue(scope, "Queue-with.odd_chars", enforce_ssl=True)
    nested = Construct(scope, "Nested")
    sqs.Queue(Construct(nested, "NestedQueue"), "Queue")
    sns.Topic(Construct(scope, "Default"), "Hidden")


def _template(stack: cdk.Stack) -> dict[str, Any]:
    return cdk.assertions.Template.from_stack(stack).to_json()  # type: ignore[no-any-return]


def test_unique_id_is_the_id_cdk_allocates_for_every_element() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    _resources(stack)
    elements = [c for c in stack.node.find_all() if cdk.CfnElement.is_cfn_element(c)]
    assert len(elements) == 6  # topic + policy, queue + policy, nested queue, hidden topic
    for element in elements:
        assert isinstance(element, cdk.CfnElement)
        assert unique_id(stack_path(element)) == stack.resolve(element.logical_id), element.node.path


def test_a_wrapper_with_kept_ids_leaves_the_template_unchanged() -> None:
    before = cdk.Stack(cdk.App(), "Stack")
    _resources(before)
    after = cdk.Stack(cdk.App(), "Stack")
    wrapper = Construct(after, "Wrapper")
    _resources(wrapper)
    keep_logical_ids(wrapper)
    assert _template(after) == _template(before)


def test_kept_ids_can_name_an_old_path() -> None:
    before = cdk.Stack(cdk.App(), "Stack")
    sns.Topic(before, "NotifyTopic")
    after = cdk.Stack(cdk.App(), "Stack")
    topic = sns.Topic(Construct(after, "Notify"), "Topic")
    keep_logical_ids(topic, old_path=["NotifyTopic"])
    assert _template(after) == _template(before)


def test_an_id_needs_a_visible_component() -> None:
    with pytest.raises(ValueError, match="Default"):
        unique_id(["Default"])
