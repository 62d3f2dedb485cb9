"""Start a SageMaker Processing job of the dataprep image: a raw Ground Truth manifest -> a YOLO dataset.

    python -m scripts.dataprep_job --stage Dev --manifest s3://<datasets bucket>/raw/<job>/output.manifest \\
        --out s3://<datasets bucket>/datasets/<name>/ [--instance-count 2] [--instance-type ml.m5.2xlarge] \\
        [-- <app.dataprep options, e.g. --val-fraction 0.1 --balance max-ratio=3>]

Image, role, bucket and key come from the stage's Training stack outputs (``<Stage>-Training``), never hard-coded.
The container (``python -m app.dataprep.processing``) reads the manifest from its ``manifest`` input; every instance
gets the whole manifest (FullyReplicated) because each plans the same dataset and copies only its own shard of the
images, found from ``/opt/ml/config/resourceconfig.json``. It writes straight to ``--out`` (images first, then
``dataset.json``), so the dataset.json that starts training lands after that shard's images.

Exit status: 0 started, 1 AWS/usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from app.contracts import instance_types
from app.contracts.storage import RAW_PREFIX
from scripts.training import CommandError, stack_outputs

ENTRYPOINT = ["python", "-m", "app.dataprep.processing"]
MANIFEST_INPUT = "/opt/ml/processing/input/manifest"
MAX_NAME = 63


def _split(uri: str, option: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri.removeprefix("s3://"):
        raise CommandError(f"{option} '{uri}': expected s3://<bucket>/<key>")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def job_name(stage: str, now: float) -> str:
    return f"dataprep-{stage.lower()}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"[:MAX_NAME]


def build_request(args: argparse.Namespace, outputs: dict[str, str], now: float) -> dict[str, Any]:
    """The keyword arguments of ``sagemaker.create_processing_job``; raises CommandError on a bad argument."""
    bucket = outputs["DatasetsBucketName"]
    manifest_bucket, manifest_key = _split(args.manifest, "--manifest")
    out_bucket, out_key = _split(args.out, "--out")
    if manifest_bucket != bucket or not manifest_key.startswith(RAW_PREFIX) or manifest_key.endswith("/"):
        raise CommandError(
            f"--manifest '{args.manifest}': expected a manifest file under s3://{bucket}/{RAW_PREFIX} "
            "(the dataprep role reads raw data only there)"
        )
    if out_bucket != bucket or out_key.startswith(RAW_PREFIX) or not out_key.strip("/"):
        raise CommandError(
            f"--out '{args.out}': expected s3://{bucket}/<dataset prefix>/ outside {RAW_PREFIX} "
            "(the dataprep role writes datasets there and never over raw data)"
        )
    if args.instance_count < 1:
        raise CommandError(f"--instance-count {args.instance_count}: expected >= 1")
    try:
        instance_types.family(args.instance_type)
    except instance_types.InstanceTypeError as exc:
        raise CommandError(f"--instance-type: {exc}") from None
    cluster: dict[str, Any] = {
        "InstanceCount": args.instance_count,
        "InstanceType": args.instance_type,
        "VolumeSizeInGB": args.volume_size_gb,
    }
    if instance_types.supports_volume_kms_key(args.instance_type):
        cluster["VolumeKmsKeyId"] = outputs["DataKeyArn"]
    extra = [a for a in args.dataprep_args if a != "--"]
    return {
        "ProcessingJobName": job_name(args.stage, now),
        "RoleArn": outputs["DataprepRoleArn"],
        "AppSpecification": {
            "ImageUri": outputs["DataprepImageUri"],
            "ContainerEntrypoint": ENTRYPOINT,
            "ContainerArguments": ["--out", f"s3://{out_bucket}/{out_key.rstrip('/')}/", *extra],
        },
        "ProcessingInputs": [
            {
                "InputName": "manifest",
                "S3Input": {
                    "S3Uri": args.manifest,
                    "LocalPath": MANIFEST_INPUT,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    # Every instance plans the whole dataset; the entrypoint shards the image copies itself.
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
        ],
        "ProcessingResources": {"ClusterConfig": cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": args.max_runtime_hours * 3600},
        "Tags": [{"Key": "platform:stage", "Value": args.stage}],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.dataprep_job",
        description="Start a SageMaker Processing job that turns a raw Ground Truth manifest into a YOLO dataset "
        "(the dataprep image and role of the stage's Training stack). Options after '--' go to app.dataprep.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--stage", required=True, help="stage name, e.g. Dev (reads the <Stage>-Training outputs)")
    p.add_argument(
        "--manifest", required=True, help=f"s3://<datasets bucket>/{RAW_PREFIX}.../output.manifest"
    )
    p.add_argument("--out", required=True, help="s3://<datasets bucket>/<dataset prefix>/ (not under raw/)")
    p.add_argument("--instance-count", type=int, default=1, help="instances sharing the image copies")
    p.add_argument("--instance-type", default="ml.m5.xlarge", help="processing instance type")
    p.add_argument("--volume-size-gb", type=int, default=30, help="storage volume per instance")
    p.add_argument("--max-runtime-hours", type=int, default=6, help="stop the job after this long")
    p.add_argument("--region", help="AWS region (default: the environment's)")
    p.add_argument("--profile", help="AWS profile (default: the environment's)")
    p.add_argument("dataprep_args", nargs=argparse.REMAINDER, help="-- then app.dataprep options")
    return p


def main(argv: Sequence[str] | None = None, *, now: float | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        session = boto3.Session(region_name=args.region, profile_name=args.profile)
        outputs = stack_outputs(session.client("cloudformation"), args.stage)
        missing = {"DataprepImageUri", "DataprepRoleArn", "DatasetsBucketName", "DataKeyArn"} - set(outputs)
        if missing:
            raise CommandError(
                f"stack {args.stage}-Training has no outputs {sorted(missing)}: deploy it again"
            )
        request = build_request(args, outputs, time.time() if now is None else now)
        created = session.client("sagemaker").create_processing_job(**request)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS: {exc}", file=sys.stderr)
        return 1
    print(f"started: {request['ProcessingJobName']} ({created['ProcessingJobArn']})")
    print(f"dataset: {request['AppSpecification']['ContainerArguments'][1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
