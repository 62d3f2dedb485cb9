"""Start a SageMaker Processing job of the dataprep image: a raw Ground Truth manifest -> a YOLO dataset.

    python -m scripts.dataprep_job --stage Dev --manifest s3://<datasets bucket>/raw/<job>/output.manifest \\
        --out s3://<datasets bucket>/datasets/<name>/ [--instance-count 2] [--instance-type ml.m5.2xlarge] \\
        [-- <app.dataprep options, e.g. --val-fraction 0.1 --balance max-ratio=3>]

Image, role, bucket and key come from the stage's Training stack outputs (``<Stage>-Training``), never hard-coded.
The container (``python -m app.dataprep.processing``) reads the manifest from its ``manifest`` input; every instance
gets the whole manifest (FullyReplicated) because each plans the same dataset and copies only its own shard of the
images, found from ``/opt/ml/config/resourceconfig.json``. It writes straight to ``--out`` (images first, then
``dataset.json``), so the dataset.json that starts training lands after that shard's images.

Nothing is billed on input that could be checked here: the app.dataprep options are parsed and checked by
app.dataprep's own parser, and the manifest object must exist (S3 HeadObject), before the job is created.

Exit status (scripts/cli.py): 0 started, 1 error (AWS, stack not deployed, bad data-prep options), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from app.contracts import instance_types
from app.contracts.stack_outputs import TrainingOutputs
from app.contracts.storage import RAW_PREFIX
from scripts import cli
from scripts.cli import OperatorError

ENTRYPOINT = ["python", "-m", "app.dataprep.processing"]
MANIFEST_INPUT = "/opt/ml/processing/input/manifest"
MAX_NAME = 63
OUTPUTS = (
    TrainingOutputs.DATAPREP_IMAGE_URI,
    TrainingOutputs.DATAPREP_ROLE_ARN,
    TrainingOutputs.DATASETS_BUCKET_NAME,
    TrainingOutputs.DATA_KEY_ARN,
)
# Set by this command or by the Processing job itself (app.dataprep.processing), never by the operator.
MANAGED_OPTIONS = ("--manifest", "--out", "--shard-index", "--shard-count")


def _split(uri: str, option: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri.removeprefix("s3://"):
        raise OperatorError(f"{option} '{uri}': expected s3://<bucket>/<key>")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def job_name(stage: str, now: float) -> str:
    return f"dataprep-{stage.lower()}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"[:MAX_NAME]


def build_request(args: argparse.Namespace, outputs: dict[str, str], now: float) -> dict[str, Any]:
    """The keyword arguments of ``sagemaker.create_processing_job``; raises OperatorError on a bad argument."""
    bucket = outputs[TrainingOutputs.DATASETS_BUCKET_NAME]
    manifest_bucket, manifest_key = _split(args.manifest, "--manifest")
    out_bucket, out_key = _split(args.out, "--out")
    if manifest_bucket != bucket or not manifest_key.startswith(RAW_PREFIX) or manifest_key.endswith("/"):
        raise OperatorError(
            f"--manifest '{args.manifest}': expected a manifest file under s3://{bucket}/{RAW_PREFIX} "
            "(the dataprep role reads raw data only there)"
        )
    if out_bucket != bucket or out_key.startswith(RAW_PREFIX) or not out_key.strip("/"):
        raise OperatorError(
            f"--out '{args.out}': expected s3://{bucket}/<dataset prefix>/ outside {RAW_PREFIX} "
            "(the dataprep role writes datasets there and never over raw data)"
        )
    cluster: dict[str, Any] = {
        "InstanceCount": args.instance_count,
        "InstanceType": args.instance_type,
        "VolumeSizeInGB": args.volume_size_gb,
    }
    if instance_types.supports_volume_kms_key(args.instance_type):
        cluster["VolumeKmsKeyId"] = outputs[TrainingOutputs.DATA_KEY_ARN]
    extra = dataprep_options(args.dataprep_args)
    return {
        "ProcessingJobName": job_name(args.stage, now),
        "RoleArn": outputs[TrainingOutputs.DATAPREP_ROLE_ARN],
        "AppSpecification": {
            "ImageUri": outputs[TrainingOutputs.DATAPREP_IMAGE_URI],
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


def dataprep_options(remainder: Sequence[str]) -> list[str]:
    """The app.dataprep options after ``--``, checked by app.dataprep's own parser and option checks."""
    from app.dataprep.cli import build_parser, check_options
    from app.dataprep.errors import DataprepError

    extra = list(remainder[1:] if remainder[:1] == ["--"] else remainder)
    managed = sorted({a.split("=", 1)[0] for a in extra} & set(MANAGED_OPTIONS))
    if managed:
        raise OperatorError(
            f"data-prep option {', '.join(managed)}: set by this command and the Processing job; "
            "use --manifest/--out before '--'"
        )
    dataprep = build_parser()

    def refuse(message: str) -> None:
        raise OperatorError(f"data-prep options after '--': {message}")

    dataprep.error = refuse  # type: ignore[method-assign,assignment]
    parsed = dataprep.parse_args(["--manifest", "s3://checked/later", "--out", "s3://checked/later", *extra])
    try:
        check_options(parsed)
    except DataprepError as exc:
        raise OperatorError(f"data-prep options after '--': {exc}") from None
    return extra


def manifest_must_exist(s3: Any, uri: str) -> None:
    """HeadObject on the manifest: a missing object fails here, not after an instance was provisioned."""
    bucket, key = _split(uri, "--manifest")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise OperatorError(
                f"--manifest {uri}: no such object (upload the Ground Truth output.manifest there first)"
            ) from None
        raise


def _instance_type(text: str) -> str:
    try:
        instance_types.family(text)
    except instance_types.InstanceTypeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m scripts.dataprep_job",
        description="Start a SageMaker Processing job that turns a raw Ground Truth manifest into a YOLO dataset "
        "(the dataprep image and role of the stage's Training stack). Options after '--' go to app.dataprep.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--stage",
        required=True,
        type=cli.stage_name,
        help="stage name, e.g. Dev (reads the <Stage>-Training outputs)",
    )
    p.add_argument(
        "--manifest",
        required=True,
        type=cli.s3_uri,
        help=f"s3://<datasets bucket>/{RAW_PREFIX}.../output.manifest",
    )
    p.add_argument(
        "--out",
        required=True,
        type=cli.s3_uri,
        help="s3://<datasets bucket>/<dataset prefix>/ (not under raw/)",
    )
    p.add_argument(
        "--instance-count", type=cli.positive_int, default=1, help="instances sharing the image copies"
    )
    p.add_argument(
        "--instance-type", type=_instance_type, default="ml.m5.xlarge", help="processing instance type"
    )
    p.add_argument("--volume-size-gb", type=cli.positive_int, default=30, help="storage volume per instance")
    p.add_argument(
        "--max-runtime-hours", type=cli.positive_int, default=6, help="stop the job after this long"
    )
    p.add_argument("--region", help="AWS region (default: the environment's)")
    p.add_argument("--profile", help="AWS profile (default: the environment's)")
    p.add_argument("dataprep_args", nargs=argparse.REMAINDER, help="-- then app.dataprep options")
    return p


@cli.command
def main(argv: Sequence[str] | None = None, *, now: float | None = None) -> int:
    args = parser().parse_args(argv)
    dataprep_options(args.dataprep_args)  # before any AWS call
    session = cli.aws_session(profile=args.profile, region=args.region)
    outputs = cli.stack_outputs(session.client("cloudformation"), f"{args.stage}-Training", required=OUTPUTS)
    request = build_request(args, outputs, time.time() if now is None else now)
    manifest_must_exist(session.client("s3"), args.manifest)
    created = session.client("sagemaker").create_processing_job(**request)
    print(f"started: {request['ProcessingJobName']} ({created['ProcessingJobArn']})")
    print(f"dataset: {request['AppSpecification']['ContainerArguments'][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
