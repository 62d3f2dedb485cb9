"""LauncherFunction: one of the launcher Lambdas (app/launcher) with the platform's reliability defaults.

Python 3.12 on x86_64, code = ``app/__init__.py`` + ``app/contracts`` + ``app/launcher`` straight from the repo
(an allow-list, so nothing else is hashed or shipped), pydantic from a layer built offline by
``scripts/build_lambda_layer.sh`` (pinned manylinux wheels: no Docker at synth). JSON logs with a retention,
X-Ray active tracing, async retries then an on-failure SQS destination, and an alarm on errors.

Reserved concurrency is opt-in (``training.launcher_reserved_concurrency``): Lambda keeps at least 100 concurrent
executions unreserved, so reserving fails CREATE in an account whose quota leaves less than that (new accounts may
start with a lower concurrency quota) - AWS Lambda quotas, https://docs.aws.amazon.com/lambda/latest/dg/
gettingstarted-limits.html, and configuration-concurrency.html ("minus 100"), read 2026-11-30.
Without it an event storm stays harmless because (1) the runner derives the job name from the request, so a
duplicated or retried event answers ``already_started`` instead of starting a second job; (2) EventBridge retries a
throttled delivery (``retry_attempts``, ``max_event_age``) and then hands the event to the dead-letter queue, as does
Lambda's own async retry (``retry_attempts``, ``max_event_age`` below), so throttling never drops an event silently;
(3) SageMaker's per-instance-type training quotas cap how many distinct jobs can run at all.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import LOG_RETENTION_DAYS
from infra.constructs.monitoring import any_occurrence_alarm
from infra.paths import REPO_ROOT

LAYER_DIR = REPO_ROOT / "build" / "lambda-layer"
LAMBDA_CODE: tuple[str, ...] = ("app/__init__.py", "app/contracts", "app/launcher")
_NEVER = ("**/__pycache__", "**/*.pyc")
RUNTIME = lambda_.Runtime.PYTHON_3_12


def code_exclude() -> list[str]:
    """Docker-ignore patterns that leave only LAMBDA_CODE in the asset."""
    return ["*", *(f"!{path}" for path in LAMBDA_CODE), *_NEVER]


def dependencies_layer(scope: Construct, construct_id: str) -> lambda_.LayerVersion:
    """pydantic (+ pydantic-settings) for the Lambda runtime, from build/lambda-layer (see the build script)."""
    if not (LAYER_DIR / "python" / "pydantic").is_dir():
        raise FileNotFoundError(
            f"{LAYER_DIR / 'python'}: missing; run scripts/build_lambda_layer.sh (part of `make setup`) to build the "
            "launcher Lambdas' pydantic layer from pinned wheels"
        )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(LAYER_DIR), exclude=[".pins"]),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[lambda_.Architecture.X86_64],
        description="pydantic + pydantic-settings (pinned manylinux wheels) for app/contracts and app/launcher",
    )


class LauncherFunction(Construct):
    """A launcher Lambda. ``function`` for grants and targets, ``dead_letters`` for what failed after retries."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: dict[str, str],
        layer: lambda_.ILayerVersion,
        dead_letters: sqs.IQueue,
        alarm_topic: sns.ITopic,
        log_retention_days: int,
        timeout: cdk.Duration,
        memory_mb: int,
        reserved_concurrency: int | None,
        retain_logs: bool = False,
        retry_attempts: int = 2,
    ) -> None:
        super().__init__(scope, construct_id)
        if log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"log_retention_days ({log_retention_days}) must be one of {list(LOG_RETENTION_DAYS)}"
            )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_logs else cdk.RemovalPolicy.DESTROY,
        )
        # RetentionDays is keyed by name, not days: set the number on the L1 so infra/config.py's list stays the
        # only list of allowed values.
        cfn_log_group = self.log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = log_retention_days
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(REPO_ROOT), exclude=code_exclude(), ignore_mode=cdk.IgnoreMode.DOCKER
            ),
            layers=[layer],
            environment=environment,
            timeout=timeout,
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            # Async invocations (EventBridge): Lambda retries, then hands the event to the dead-letter queue.
            retry_attempts=retry_attempts,
            max_event_age=cdk.Duration.hours(6),
            on_failure=destinations.SqsDestination(dead_letters),
        )
        self.errors_alarm = any_occurrence_alarm(
            self,
            "ErrorsAlarm",
            description=f"{description}: invocations failed (after this, events go to the dead-letter queue)",
            metric=self.function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
        )
        self.errors_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
