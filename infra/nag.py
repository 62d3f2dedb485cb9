"""cdk-nag wiring: the packs every synth runs, and ``acknowledge`` for one finding at a time next to its resource.

cdk-nag 3.x is a CDK validation plugin (``Validations.of(app).add_plugins``); an acknowledgement is recorded on
the construct it sits on and covers that construct and its children. v3 matches findings exactly: an IAM5
finding is ``AwsSolutions-IAM5[Resource::arn:...]``, so pass ``applies_to`` for such findings.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

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
