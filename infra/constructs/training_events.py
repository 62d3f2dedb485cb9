"""TrainingEvents: the EventBridge rules that drive a stage's launchers, and the alarms on what they leave behind.

A ``dataset.json`` landing in the datasets bucket starts the runner; SageMaker's "Training Job State Change" events
of the stage's jobs (named with its prefix) go to the registrar: Completed/Stopped to register a model version,
Failed to publish the reason. Every target retries, then hands the event to the dead-letter queue. Alarms: a training
job failed, and events that failed after all retries wait in the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app.contracts.dataset import DATASET_JSON
from infra.constructs.monitoring import any_occurrence_alarm

TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"


class TrainingEvents(Construct):
    """Public: ``dataset_rule``, ``job_finished_rule``, ``job_failed_rule``, ``failed_jobs_alarm``,
    ``dead_letters_alarm``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        job_name_prefix: str,
        datasets_bucket: s3.IBucket,
        runner: lambda_.IFunction,
        registrar: lambda_.IFunction,
        dead_letters: sqs.Queue,
        notify_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        target_options: dict[str, Any] = {
            "dead_letter_queue": dead_letters,
            "retry_attempts": 4,
            "max_event_age": cdk.Duration.hours(2),
        }
        self.dataset_rule = events.Rule(
            self,
            "DatasetLanded",
            description=f"{stage}: a dataset.json in the datasets bucket starts a training job",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [datasets_bucket.bucket_name]},
                    "object": {"key": [{"suffix": f"/{DATASET_JSON}"}]},
                },
            ),
            targets=[targets.LambdaFunction(runner, **target_options)],
        )

        def job_pattern(statuses: list[str]) -> events.EventPattern:
            return events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[TRAINING_JOB_STATE_CHANGE],
                detail={"TrainingJobName": [{"prefix": job_name_prefix}], "TrainingJobStatus": statuses},
            )

        self.job_finished_rule = events.Rule(
            self,
            "TrainingJobFinished",
            description=f"{stage}: completed (or stopped) training jobs -> model registry / notify",
            event_pattern=job_pattern(["Completed", "Stopped"]),
            targets=[targets.LambdaFunction(registrar, **target_options)],
        )
        self.job_failed_rule = events.Rule(
            self,
            "TrainingJobFailed",
            description=f"{stage}: failed training jobs -> notify with the reason",
            event_pattern=job_pattern(["Failed"]),
            targets=[targets.LambdaFunction(registrar, **target_options)],
        )
        self.failed_jobs_alarm = any_occurrence_alarm(
            self,
            "TrainingJobFailedAlarm",
            description=f"{stage}: a training job failed (the notify topic has the reason)",
            metric=cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="MatchedEvents",
                dimensions_map={"RuleName": self.job_failed_rule.rule_name},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
        )
        self.dead_letters_alarm = any_occurrence_alarm(
            self,
            "DeadLettersAlarm",
            description=f"{stage}: launcher events failed after all retries; inspect the queue",
            metric=dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
        )
        for alarm in (self.failed_jobs_alarm, self.dead_letters_alarm):
            alarm.add_alarm_action(cw_actions.SnsAction(notify_topic))
