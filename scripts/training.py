"""Operator commands for training runs of a deployed stage. Everything is found through the stage's Training stack
outputs (``<Stage>-Training``), never hard-coded names; instance types for the quota check come from infra/stages.py.

    python -m scripts.training start --stage Dev --dataset-uri s3://<datasets bucket>/<dataset>/ [-p epochs=50 ...]
    python -m scripts.training follow --stage Dev <job name>
    python -m scripts.training versions --stage Dev
    python -m scripts.training quota --stage Dev      # instance quotas (2 x endpoint max), Lambda concurrency

Exit status (scripts/lib/cli.py): 0 ok, 1 error (AWS, a stage not deployed, the runner rejected the request),
2 usage, 3 ``follow``: the job failed; ``quota``: a quota is low or missing, or Lambda concurrency is short.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from app.contracts.dataset import DATASET_JSON
from app.contracts.metrics import QUALITY_METRIC
from infra.stack_outputs import TrainingOutputs
from scripts.lib import aws, cli
from scripts.lib.capacity_checks import (
    blue_green_note,
    endpoint_instances_needed,
    endpoint_quota_name,
    lambda_concurrency,
    quota_values,
)
from scripts.lib.cli import OperatorError

TERMINAL = {"Completed", "Failed", "Stopped"}


def training_output(session: Any, stage: str, key: str) -> str:
    """One output of ``<stage>-Training``; a stack not (fully) deployed is an OperatorError naming the cause."""
    return aws.stack_output(session.client("cloudformation"), f"{stage}-Training", key)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The runner's operator request from the command line (the runner validates it)."""
    hyperparameters: dict[str, Any] = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OperatorError(f"--param '{item}': expected NAME=VALUE, e.g. epochs=50")
        hyperparameters[key] = _value(value)
    request: dict[str, Any] = {"dataset_uri": args.dataset_uri, "hyperparameters": hyperparameters}
    for field in (
        "instance_type",
        "instance_count",
        "volume_size_gb",
        "use_spot",
        "pretrained_uri",
        "run_label",
        "champion",
    ):
        if getattr(args, field) is not None:
            request[field] = getattr(args, field)
    return request


def invoke_runner(lambda_client: Any, function_name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Invoke the runner synchronously; raise OperatorError with its message when the function itself failed.

    A payload that is not JSON (a Lambda runtime crash, a proxy in between) is reported with its first bytes."""
    response = lambda_client.invoke(
        FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(request).encode()
    )
    raw = response["Payload"].read() or b"null"
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = raw[:200].decode("utf-8", errors="replace").replace("\n", " ")
        failed = f" ({response['FunctionError']})" if response.get("FunctionError") else ""
        raise OperatorError(
            f"runner {function_name} failed{failed}: it answered {text!r}, not JSON; see its logs "
            f"(Lambda console: {function_name}, Monitor, View CloudWatch logs)"
        ) from None
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise OperatorError(
            f"runner failed ({response['FunctionError']}): {message}; retry in a minute if throttled"
        )
    if not isinstance(payload, dict):
        raise OperatorError(f"runner answered {payload!r}, expected a JSON object")
    return payload


def objects_must_exist(s3: Any, args: argparse.Namespace) -> None:
    """HeadObject on the dataset's dataset.json and the --pretrained-uri before a GPU instance is billed for a job
    that would fail on them. A 403 (the operator may invoke the runner without reading the bucket) is not a no."""
    from botocore.exceptions import ClientError

    uri = args.dataset_uri
    checks = [("--dataset-uri", uri if uri.endswith(DATASET_JSON) else f"{uri.rstrip('/')}/{DATASET_JSON}")]
    if args.pretrained_uri:
        checks.append(("--pretrained-uri", args.pretrained_uri))
    for option, uri in checks:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                hint = (
                    "run data prep first, or check the prefix"
                    if option == "--dataset-uri"
                    else "check the key"
                )
                raise OperatorError(f"{option}: {uri} does not exist ({hint})") from None
            if code not in ("403", "AccessDenied"):
                raise


def cmd_start(args: argparse.Namespace, session: Any) -> int:
    request = build_request(args)  # a bad --param fails before any AWS call
    function = training_output(session, args.stage, TrainingOutputs.RUNNER_FUNCTION_NAME)
    objects_must_exist(session.client("s3"), args)
    result = invoke_runner(session.client("lambda"), function, request)
    if result.get("status") == "rejected":
        error = result.get("error") or {}
        raise OperatorError(f"the runner rejected the request ({error.get('code')}): {error.get('message')}")
    if not isinstance(result.get("status"), str) or not isinstance(result.get("job_name"), str):
        raise OperatorError(f"runner answered {result!r}, expected 'status' and 'job_name'")
    print(f"{result['status']}: {result['job_name']}")
    print(f"console: {result.get('console_url')}")
    print(f"follow:  python -m scripts.training follow --stage {args.stage} {result['job_name']}")
    return 0


def describe_line(job: dict[str, Any]) -> str:
    metrics = " ".join(f"{m['MetricName']}={m['Value']:.4g}" for m in job.get("FinalMetricDataList", []))
    status = f"{job['TrainingJobStatus']}/{job.get('SecondaryStatus', '-')}"
    reason = f" reason={job['FailureReason']}" if job.get("FailureReason") else ""
    return f"{status} {metrics}{reason}".rstrip()


TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # streams "<job name>/algo-<n>-<epoch>", one per instance


def stream_logs(session: Any, job_name: str, *, interval: float) -> None:
    """Print the job's log lines (every instance) as they arrive, until the job ends. The job comes from the
    SageMaker Python SDK (TrainingJob.get/refresh); the lines from CloudWatch Logs (FilterLogEvents by stream
    prefix, deduplicated by event id, so no line is printed twice or lost between polls)."""
    from sagemaker.core.resources import TrainingJob  # operator extra: never in the Lambdas or the images

    logs = session.client("logs")
    job = TrainingJob.get(job_name, session=session, region=session.region_name)
    seen: set[str] = set()
    start = 0
    while True:
        finished = str(job.training_job_status) in TERMINAL
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job_name}/", startTime=start
            )
            for page in pages:
                for event in page.get("events", []):
                    if event["eventId"] not in seen:
                        seen.add(event["eventId"])
                        start = max(start, int(event["timestamp"]))
                        print(
                            f"{event['logStreamName'].split('/')[-1]}  {event['message'].rstrip()}",
                            flush=True,
                        )
        except logs.exceptions.ResourceNotFoundException:
            pass  # no log group until the first job of the account writes one
        if finished:
            return
        time.sleep(interval)
        job.refresh()


def cmd_follow(args: argparse.Namespace, session: Any) -> int:
    sagemaker = session.client("sagemaker")
    if args.logs and not args.once:
        stream_logs(session, args.job_name, interval=args.interval)
    last = None
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=args.job_name)
        line = describe_line(job)
        if line != last:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
            last = line
        if job["TrainingJobStatus"] == "Failed":
            raise cli.CheckFailed(f"training job {args.job_name} failed: {job.get('FailureReason', '-')}")
        if job["TrainingJobStatus"] in TERMINAL or args.once:
            return 0
        time.sleep(args.interval)


def model_versions(sagemaker: Any, group: str) -> list[dict[str, Any]]:
    """Versions of ``group``, newest first, with approval status and the metrics the registrar recorded."""
    rows = []
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
    ):
        for summary in page["ModelPackageSummaryList"]:
            package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            props = package.get("CustomerMetadataProperties", {})
            rows.append(
                {
                    "version": summary.get("ModelPackageVersion"),
                    "status": package["ModelApprovalStatus"],
                    "mAP50-95": props.get(f"metric:{QUALITY_METRIC}", "-"),
                    "training_job": props.get("training_job", "-"),
                    "arn": summary["ModelPackageArn"],
                }
            )
    return rows


def cmd_versions(args: argparse.Namespace, session: Any) -> int:
    group = training_output(session, args.stage, TrainingOutputs.MODEL_PACKAGE_GROUP_NAME)
    rows = model_versions(session.client("sagemaker"), group)
    if not rows:
        print(f"{group}: no versions yet")
    for row in rows:
        print(
            f"v{row['version']:<4} {row['status']:<22} mAP50-95={row['mAP50-95']:<8} {row['training_job']}  {row['arn']}"
        )
    return 0


@dataclass(frozen=True)
class QuotaCheck:
    quota_name: str
    needed: int
    available: float | None  # None: no such quota in the account/region
    source: str = "applied"  # "default": the AWS default (the account has no applied value)

    @property
    def ok(self) -> bool:
        return self.available is not None and self.available >= self.needed


def needed_quotas(stage: str) -> dict[str, int]:
    """Quota name -> instances the stage needs (training job + endpoint: a blue/green deploy at the autoscaling
    maximum runs the old and the new fleet side by side, scripts/lib/capacity_checks.py)."""
    config = aws.stage_config(stage)
    usage = "spot training job usage" if config.training.use_spot else "training job usage"
    return {
        f"{config.training.instance_type} for {usage}": config.training.instance_count,
        endpoint_quota_name(config.endpoint.instance_type): endpoint_instances_needed(
            config.endpoint.autoscaling.max_capacity
        ),
    }


def check_quotas(service_quotas: Any, needed: dict[str, int]) -> list[QuotaCheck]:
    """Each needed quota against its applied value, else its AWS default (capacity_checks.quota_values)."""
    values = quota_values(service_quotas, needed)
    return [QuotaCheck(name, need, *values[name]) for name, need in needed.items()]


def cmd_quota(args: argparse.Namespace, session: Any) -> int:
    config = aws.stage_config(args.stage)
    checks = check_quotas(session.client("service-quotas"), needed_quotas(args.stage))
    for check in checks:
        have = "missing" if check.available is None else f"{check.available:g}"
        if check.source == "default":
            have += " (AWS default: none applied)"
        print(f"{'ok ' if check.ok else 'LOW'} {check.quota_name}: need {check.needed}, have {have}")
        if check.quota_name == endpoint_quota_name(config.endpoint.instance_type):
            note = blue_green_note(check.available, config.endpoint.autoscaling.max_capacity)
            if note:
                print(note)
    concurrency = lambda_concurrency(session.client("lambda"), config.training.launcher_reserved_concurrency)
    print(concurrency.line())
    if not all(check.ok for check in checks):
        print(
            "request increases in Service Quotas (service: Amazon SageMaker) for the LOW lines",
            file=sys.stderr,
        )
        return cli.EXIT_CHECK_FAILED
    return cli.EXIT_OK if concurrency.ok else cli.EXIT_CHECK_FAILED


def parser() -> argparse.ArgumentParser:
    top = cli.ArgumentParser(prog="python -m scripts.training", description=__doc__.split("\n\n")[0])
    top.add_argument("--region", help="AWS region (default: the environment's)")
    top.add_argument("--profile", help="AWS profile (default: the environment's)")
    sub = top.add_subparsers(dest="command", required=True)

    start = sub.add_parser("start", help="start a training run (invokes the stage's runner Lambda)")
    start.add_argument("--stage", required=True, type=cli.stage_name)
    start.add_argument(
        "--dataset-uri", required=True, type=cli.s3_uri, help="s3://<datasets bucket>/<dataset folder>/"
    )
    start.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="hyperparameter override")
    start.add_argument("--instance-type")
    start.add_argument("--instance-count", type=cli.positive_int)
    start.add_argument("--volume-size-gb", type=cli.positive_int)
    start.add_argument("--spot", dest="use_spot", action="store_true", default=None)
    start.add_argument("--no-spot", dest="use_spot", action="store_false")
    start.add_argument("--pretrained-uri", type=cli.s3_uri, help="s3://.../model.pt to fine-tune from")
    start.add_argument("--run-label", help="train again on the same inputs (a new job name)")
    start.add_argument(
        "--champion",
        metavar="none|PACKAGE_ARN",
        help="the model the job is compared with (default: the stage's latest Approved version); 'none' skips the "
        "comparison, and the registrar then leaves the version for a person (docs/training-runs.md)",
    )
    start.set_defaults(func=cmd_start)

    follow = sub.add_parser("follow", help="stream a job's logs, then its status and final metrics")
    follow.add_argument("--stage", required=True, type=cli.stage_name)
    follow.add_argument("job_name")
    follow.add_argument("--interval", type=cli.positive_float, default=30.0, help="seconds between polls")
    follow.add_argument("--once", action="store_true", help="print once and exit")
    follow.add_argument(
        "--no-logs", dest="logs", action="store_false", help="status lines only, no log stream"
    )
    follow.set_defaults(func=cmd_follow)

    versions = sub.add_parser("versions", help="list the model versions of a stage")
    versions.add_argument("--stage", required=True, type=cli.stage_name)
    versions.set_defaults(func=cmd_versions)

    quota = sub.add_parser(
        "quota",
        help="check the stage's training and endpoint instance quotas (endpoint: 2 x max capacity for blue/green) "
        "and the account's unreserved Lambda concurrency",
    )
    quota.add_argument("--stage", required=True, type=cli.stage_name)
    quota.set_defaults(func=cmd_quota)
    return top


@cli.command
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    session = aws.aws_session(profile=args.profile, region=args.region)
    return int(args.func(args, session))


if __name__ == "__main__":
    sys.exit(main())
