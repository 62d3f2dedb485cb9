"""Start a SageMaker Processing job of the dataprep image: labels (Ground Truth manifest, COCO JSON or YOLO
data.yaml) -> a YOLO dataset.

    python -m scripts.dataprep_job --stage Dev --labels s3://<datasets bucket>/raw/<job>/output.manifest \\
        --out s3://<datasets bucket>/datasets/<name>/ [--instance-count 2] [--instance-type ml.m5.2xlarge] \\
        [-- <app.dataprep options, e.g. --val-fraction 0.1 --balance max-ratio=3>]

Image, role, bucket and key come from the stage's Training stack outputs (``<Stage>-Training``), never hard-coded.
The container (``python -m app.dataprep.processing``) reads the labels itself (``--labels s3://...``) with the
dataprep role; every instance plans the same dataset and copies only its own shard of the images, found from
``/opt/ml/config/resourceconfig.json``. It writes straight to ``--out`` (images first, then ``dataset.json``), so
the dataset.json that starts training lands after that shard's images.

Nothing is billed on input that could be checked here (preflight, before CreateProcessingJob): the instance type
must run the x86_64 image; the app.dataprep options are checked by app.dataprep's own parser; the label file is
read and must be one of the supported formats; it and every image it names must lie under a location the stage's
dataprep role may read (the datasets bucket's raw/ and the stage setting ``label_sources``), else the refusal
names the setting to add.

Exit status (scripts/lib/cli.py): 0 started, 1 error (AWS, stack not deployed, bad data-prep options), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from app.contracts import instance_types
from app.contracts.storage import RAW_PREFIX, S3Uri, S3UriError
from app.dataprep.labels import HEAD_BYTES
from infra.stack_outputs import TrainingOutputs
from scripts.lib import aws, cli
from scripts.lib.cli import OperatorError

ENTRYPOINT = ["python", "-m", "app.dataprep.processing"]
LABEL_SOURCES_SETTING = "label_sources"
SHOWN = 3  # images named in a refusal
MAX_NAME = 63
OUTPUTS = (
    TrainingOutputs.DATAPREP_IMAGE_URI,
    TrainingOutputs.DATAPREP_ROLE_ARN,
    TrainingOutputs.DATASETS_BUCKET_NAME,
    TrainingOutputs.DATA_KEY_ARN,
)
# Set by this command or by the Processing job itself (app.dataprep.processing), never by the operator.
MANAGED_OPTIONS = ("--labels", "--manifest", "--out", "--shard-index", "--shard-count")


def _split(uri: str, option: str) -> tuple[str, str]:
    try:
        loc = S3Uri.parse(uri, key_required=True)
    except S3UriError as exc:
        raise OperatorError(f"{option}: {exc}") from None
    return loc.bucket, loc.key


def _s3_uri(text: str) -> str:
    """argparse type: the strict S3 parser of app.contracts.storage (``s3:/b/k`` and bad bucket names refused)."""
    try:
        S3Uri.parse(text, key_required=True)
    except S3UriError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def job_name(stage: str, now: float) -> str:
    return f"dataprep-{stage.lower()}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"[:MAX_NAME]


def build_request(args: argparse.Namespace, outputs: dict[str, str], now: float) -> dict[str, Any]:
    """The keyword arguments of ``sagemaker.create_processing_job``; raises OperatorError on a bad argument."""
    bucket = outputs[TrainingOutputs.DATASETS_BUCKET_NAME]
    out_bucket, out_key = _split(args.out, "--out")
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
            # Every instance reads the whole label file (it plans the whole dataset) and copies its shard of images.
            "ContainerArguments": [
                "--out",
                f"s3://{out_bucket}/{out_key.rstrip('/')}/",
                "--labels",
                labels_uri(args),
                *extra,
            ],
        },
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
    parsed = parsed_dataprep_options(extra, dataprep)
    try:
        check_options(parsed)
    except DataprepError as exc:
        raise OperatorError(f"data-prep options after '--': {exc}") from None
    return extra


def parsed_dataprep_options(
    extra: Sequence[str], dataprep: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """app.dataprep's view of the options (labels and out are set by this command)."""
    from app.dataprep.cli import build_parser

    return (dataprep or build_parser()).parse_args(
        ["--labels", "s3://checked-later/x", "--out", "s3://checked-later/x", *extra]
    )


def labels_uri(args: argparse.Namespace) -> str:
    return str(args.labels or args.manifest)


def readable_locations(bucket: str, stage: str) -> list[S3Uri]:
    """Where the stage's dataprep role may read (infra/constructs/dataprep_job.py grants exactly these)."""
    sources = aws.stage_config(stage).label_sources
    return [S3Uri(bucket, RAW_PREFIX), *(S3Uri.parse(s.uri) for s in sources)]


def _setting_hint(stage: str, example: str) -> str:
    bucket, _, key = example.removeprefix("s3://").partition("/")
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    return (
        f"add the prefix to the stage setting '{LABEL_SOURCES_SETTING}' of {stage} in infra/stages.py "
        f"(e.g. {{'uri': 's3://{bucket}/{prefix}'}}, plus 'kms_key_arn' when the objects are SSE-KMS encrypted) and "
        "deploy the stage, or copy the data under the datasets bucket's raw/"
    )


def _outside(uris: Iterable[str], allowed: list[S3Uri]) -> tuple[int, list[str]]:
    """How many ``uris`` the role cannot read, and the first few of them (with why, for a malformed one)."""
    count, shown = 0, list[str]()
    for uri in uris:
        try:
            ok = any(S3Uri.parse(uri).within(a) for a in allowed)
            why = ""
        except S3UriError as exc:
            ok, why = False, f" ({exc})"
        if not ok:
            count += 1
            if len(shown) < SHOWN:
                shown.append(uri + why)
    return count, shown


def preflight(s3: Any, args: argparse.Namespace, allowed: list[S3Uri], options: argparse.Namespace) -> str:
    """Read the labels as the job would and refuse what it could not use; return the format found."""
    from app.dataprep.errors import DataprepError
    from app.dataprep.labels import DATA_YAML, LabelFormat, detect_format, format_of_name, image_locations
    from app.dataprep.yolo_folder import Folder, parent, read_data_yaml
    from app.dataprep.yolo_folder import image_locations as yolo_image_locations

    uri = labels_uri(args)
    option = "--labels" if args.labels else "--manifest"
    count, _ = _outside([uri], allowed)
    if count:
        raise OperatorError(
            f"{option} {uri}: outside the locations the {args.stage} dataprep role may read "
            f"({', '.join(map(str, allowed))}); {_setting_hint(args.stage, uri)}"
        )
    chosen = None if options.format == "auto" else LabelFormat(options.format)
    if args.manifest and chosen is None:
        chosen = LabelFormat.GROUNDTRUTH
    try:
        if uri.endswith("/") or (chosen or format_of_name(uri)) is LabelFormat.YOLO:
            # a YOLO folder is named by its data.yaml or by the folder (as app.dataprep accepts it)
            data = read_data_yaml(uri + DATA_YAML if uri.endswith("/") else uri, Folder(s3))
            fmt, locations = LabelFormat.YOLO, yolo_image_locations(data, Folder(s3))
            count, shown = _outside(locations, allowed)
        else:
            bucket, key = _split(uri, option)
            with tempfile.NamedTemporaryFile(suffix=".labels") as handle:
                try:
                    s3.download_fileobj(bucket, key, handle)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                        raise OperatorError(
                            f"{option} {uri}: no such object (upload the label file first)"
                        ) from None
                    raise
                handle.flush()
                local = Path(handle.name)
                with open(local, "rb") as head:
                    fmt = detect_format(head.read(HEAD_BYTES), uri)
                if chosen is not None and chosen is not fmt:
                    # --manifest (or --format) names what the job will parse it as: a COCO file parsed as a
                    # manifest would only be rejected line by line after an instance was provisioned.
                    how = "pass it with --labels" if args.manifest else f"drop --format {chosen.value}"
                    raise OperatorError(
                        f"{option} {uri}: the file is a {fmt.value} label file, not {chosen.value}; {how}"
                    )
                base = options.image_base or parent(uri)
                count, shown = _outside(image_locations(local, uri, fmt, image_base=base), allowed)
    except DataprepError as exc:
        raise OperatorError(f"{option}: {exc}") from None
    if count:
        raise OperatorError(
            f"{option} {uri}: {count} image location(s) outside what the {args.stage} dataprep role may read "
            f"({', '.join(map(str, allowed))}), e.g. {'; '.join(shown)}; {_setting_hint(args.stage, shown[0])}"
        )
    return fmt.value


def _instance_type(text: str) -> str:
    try:
        instance_types.family(text)
        instance_types.check_architecture(
            text
        )  # Graviton (arm64) cannot start the linux/amd64 dataprep image
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
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument(
        "--labels",
        type=_s3_uri,
        help=f"s3://<datasets bucket>/{RAW_PREFIX}.../ a Ground Truth output.manifest, COCO JSON or YOLO data.yaml "
        f"(or any location in the stage setting {LABEL_SOURCES_SETTING})",
    )
    labels.add_argument(
        "--manifest", type=_s3_uri, help="a Ground Truth output.manifest (older name of --labels)"
    )
    p.add_argument(
        "--out",
        required=True,
        type=_s3_uri,
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
    options = parsed_dataprep_options(dataprep_options(args.dataprep_args))  # before any AWS call
    session = aws.aws_session(profile=args.profile, region=args.region)
    outputs = aws.stack_outputs(session.client("cloudformation"), f"{args.stage}-Training", required=OUTPUTS)
    request = build_request(args, outputs, time.time() if now is None else now)
    allowed = readable_locations(outputs[TrainingOutputs.DATASETS_BUCKET_NAME], args.stage)
    fmt = preflight(session.client("s3"), args, allowed, options)
    created = session.client("sagemaker").create_processing_job(**request)
    print(f"labels: {labels_uri(args)} ({fmt})")
    print(f"started: {request['ProcessingJobName']} ({created['ProcessingJobArn']})")
    print(f"dataset: {request['AppSpecification']['ContainerArguments'][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
