"""ApprovalNotifications: a message when a release waits for a person's approval (the Prod gate of the pipeline).

A CodeStar Notifications rule on the pipeline for the event ``codepipeline-pipeline-manual-approval-needed``
("Events for notification rules on pipelines", Developer Tools console User Guide,
https://docs.aws.amazon.com/dtconsole/latest/userguide/concepts.html#events-ref-pipeline, read 2026-12-05), sent to
an encrypted SNS topic with e-mail subscriptions (``AlarmTopic``). A rule, not the approval action's own
``NotificationArn``: CDK Pipelines' ManualApprovalStep takes a comment and a review URL only, and one rule covers
every approval the pipeline has.

The topic must let the service publish and use its key: ``sns:Publish`` in the topic policy and ``kms:Decrypt`` /
``kms:GenerateDataKey*`` in the key policy for ``codestar-notifications.amazonaws.com`` ("Configure Amazon SNS topics
for notifications", Developer Tools console User Guide,
https://docs.aws.amazon.com/dtconsole/latest/userguide/set-up-sns.html, and "Key management" (AWS service event
sources and encrypted topics), Amazon SNS Developer Guide, https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html,
read 2026-12-05). CDK's Topic adds both statements when it becomes a notification rule's target (``grantPublish`` to
the service principal, which grants the topic's key too); tests/infra/test_pipeline.py asserts them.
"""

from __future__ import annotations

from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codestarnotifications as notifications
from constructs import Construct

from infra.constructs.monitoring import AlarmTopic, TopicPublisher

APPROVAL_NEEDED = codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED  # its id, per the page above


class ApprovalNotifications(Construct):
    """Notifies ``emails`` (and any later subscriber of ``topic``) when ``pipeline`` waits for an approval.
    Public: ``topic``, ``key``, ``rule``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: codepipeline.IPipeline,
        emails: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        topic = AlarmTopic(
            self,
            "Topic",
            display_name="Release approvals",
            purpose="the release approval topic",
            emails=emails,
            retain=False,  # it holds no data: messages are delivered, not kept
            publisher=TopicPublisher(
                "codestar-notifications.amazonaws.com", "CodeStar Notifications", key_statement=False
            ),
        )
        self.topic, self.key = topic.topic, topic.key
        # FULL: the message carries the approval's details (the comment names the model package), not only the event.
        self.rule = pipeline.notify_on(
            "ApprovalNeeded",
            self.topic,
            events=[APPROVAL_NEEDED],
            detail_type=notifications.DetailType.FULL,
        )
