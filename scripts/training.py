"""Operator commands for training runs of a deployed stage. Everything is found through the stage's Training stack
outputs (``<Stage>-Training``), never hard-coded names; instance types for the quota check come from infra/stages.py.

    python -m scripts.training start --stage Dev --dataset-uri s3://<datasets bucket>/<dataset>/ [-p epochs=50 ...]
    python -m scripts.training follow --stage Dev <job name>
    python -m scripts.training versions --stage Dev
    python -m scripts.training quota --stage Dev      # instance quotas (2 x endpoint max), Lambda concurrency

Exit status: 0 ok, 1 AWS/usage error, 2 the runner rejected the request or a quota is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from scripts.capacity_checks import blue_green_note, endpoint_instances_needed, lambda_concurrency

TERMINAL = {"Completed", "Failed", "Stopped"}


class CommandError(RuntimeError):
    """Something the operator must fix (a stack not deployed, a bad argument): printed without a traceback."""


def stack_outputs(cloudformation: Any, stage: str, stack: str = "Training") -> dict[str, str]:
    """Outputs of ``<stage>-<stack>`` as {key: value}."""
    name = f"{stage}-{stack}"
    try:
        [described] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise CommandError(
            f"stack {name}: {exc.response['Error']['Message']} (is stage {stage} deployed?)"
        ) from None
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


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
            raise CommandError(f"--param '{item}': expected NAME=VALUE, e.g. epochs=50")
        hyperparameters[key] = _value(value)
    request: dict[str, Any] = {"dataset_uri": args.dataset_uri, "hyperparameters": hyperparameters}
    for field in (
        "instance_type",
        "instance_count",
        "volume_size_gb",
        "use_spot",
        "pretrained_uri",
        "run_label",
    ):
        if getattr(args, field) is not None:
            request[field] = getattr(args, field)
    return request


def invoke_runner(lambda_client: Any, function_name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Invoke the runner synchronously; raise CommandError with its message when the function itself failed."""
    response = lambda_client.invoke(
        FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(request).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise CommandError(
            f"runner failed ({response['FunctionError']}): {message}; retry in a minute if throttled"
        )
    if not isinstance(payload, dict):
        raise CommandError(f"runner answered {payload!r}, expected a JSON object")
    return payload


def cmd_start(args: argparse.Namespace, session: Any) -> int:
    outputs = stack_outputs(session.client("cloudformation"), args.stage)
    result = invoke_runner(session.client("lambda"), outputs["RunnerFunctionName"], build_request(args))
    if result.get("status") == "rejected":
        error = result.get("error", {})
        print(f"rejected ({error.get('code')}): {error.get('message')}", file=sys.stderr)
        return 2
    print(f"{result['status']}: {result['job_name']}")
    print(f"console: {result.get('console_url')}")
    print(f"follow:  python -m scripts.training follow --stage {args.stage} {result['job_name']}")
    return 0


def describe_line(job: dict[str, Any]) -> str:
    metrics = " ".join(f"{m['MetricName']}={m['Value']:.4g}" for m in job.get("FinalMetricDataList", []))
    status = f"{job['TrainingJobStatus']}/{job.get('SecondaryStatus', '-')}"
    reason = f" reason={job['FailureReason']}" if job.get("FailureReason") else ""
    return f"{status} {metrics}{reason}".rstrip()


def cmd_follow(args: argparse.Namespace, session: Any) -> int:
    sagemaker = session.client("sagemaker")
    last = None
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=args.job_name)
        line = describe_line(job)
        if line != last:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
            last = line
        if job["TrainingJobStatus"] in TERMINAL or args.once:
            return 0 if job["TrainingJobStatus"] != "Failed" else 2
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
                    "mAP50-95": props.get("metric:val:mAP50-95", "-"),
                    "training_job": props.get("training_job", "-"),
                    "arn": summary["ModelPackageArn"],
                }
            )
    return rows


def cmd_versions(args: argparse.Namespace, session: Any) -> int:
    group = stack_outputs(session.client("cloudformation"), args.stage)["ModelPackageGroupName"]
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

    @property
    def ok(self) -> bool:
        return self.available is not None and self.available >= self.needed


def _stage_config(stage: str) -> Any:
    from infra.app import stage_configs  # late: only this command needs the stage config

    configs = stage_configs()
    if stage not in configs:
        raise CommandError(f"unknown stage '{stage}'; expected one of {sorted(configs)}")
    return configs[stage]


def endpoint_quota_name(config: Any) -> str:
    return f"{config.endpoint.instance_type} for endpoint usage"


def needed_quotas(stage: str) -> dict[str, int]:
    """Quota name -> instances the stage needs (training job + endpoint: a blue/green deploy at the autoscaling
    maximum runs the old and the new fleet side by side, scripts/capacity_checks.py)."""
    config = _stage_config(stage)
    usage = "spot training job usage" if config.training.use_spot else "training job usage"
    return {
        f"{config.training.instance_type} for {usage}": config.training.instance_count,
        endpoint_quota_name(config): endpoint_instances_needed(config.endpoint.autoscaling.max_capacity),
    }


def check_quotas(service_quotas: Any, needed: dict[str, int]) -> list[QuotaCheck]:
    values: dict[str, float] = {}
    for page in service_quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page["Quotas"]:
            values[quota["QuotaName"]] = float(quota["Value"])
    return [QuotaCheck(name, need, values.get(name)) for name, need in needed.items()]


def cmd_quota(args: argparse.Namespace, session: Any) -> int:
    config = _stage_config(args.stage)
    checks = check_quotas(session.client("service-quotas"), needed_quotas(args.stage))
    for check in checks:
        have = "missing" if check.available is None else f"{check.available:g}"
        print(f"{'ok ' if check.ok else 'LOW'} {check.quota_name}: need {check.needed}, have {have}")
        if check.quota_name == endpoint_quota_name(config):
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
        return 2
    return 0 if concurrency.ok else 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m scripts.training", description=__doc__.split("\n\n")[0])
    top.add_argument("--region", help="AWS region (default: the environment's)")
    top.add_argument("--profile", help="AWS profile")
    sub = top.add_subparsers(dest="command", required=True)

    start = sub.add_parser("start", help="start a training run (invokes the stage's runner Lambda)")
    start.add_argument("--stage", required=True)
    start.add_argument("--dataset-uri", required=True, help="s3://<datasets bucket>/<dataset folder>/")
    start.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="hyperparameter override")
    start.add_argument("--instance-type")
    start.add_argument("--instance-count", type=int)
    start.add_argument("--volume-size-gb", type=int)
    start.add_argument("--spot", dest="use_spot", action="store_true", default=None)
    start.add_argument("--no-spot", dest="use_spot", action="store_false")
    start.add_argument("--pretrained-uri", help="s3://.../model.pt to fine-tune from")
    start.add_argument("--run-label", help="train again on the same inputs (a new job name)")
    start.set_defaults(func=cmd_start)

    follow = sub.add_parser("follow", help="print a job's status and final metrics until it ends")
    follow.add_argument("--stage", required=True)
    follow.add_argument("job_name")
    follow.add_argument("--interval", type=float, default=30.0, help="seconds between polls")
    follow.add_argument("--once", action="store_true", help="print once and exit")
    follow.set_defaults(func=cmd_follow)

    versions = sub.add_parser("versions", help="list the model versions of a stage")
    versions.add_argument("--stage", required=True)
    versions.set_defaults(func=cmd_versions)

    quota = sub.add_parser(
        "quota",
        help="check the stage's training and endpoint instance quotas (endpoint: 2 x max capacity for blue/green) "
        "and the account's unreserved Lambda concurrency",
    )
    quota.add_argument("--stage", required=True)
    quota.set_defaults(func=cmd_quota)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    session = boto3.Session(region_name=args.region, profile_name=args.profile)
    try:
        return int(args.func(args, session))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
