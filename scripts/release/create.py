"""``release create``: a new record from a stage's latest Approved model version and its images."""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from app.contracts.artifact import ModelCard, Precision
from infra.release_record import (
    CURRENT,
    QUALITY_METRIC,
    Int8Gate,
    Release,
    ReleaseError,
    ReleaseModel,
    release_path,
    s3_location,
)
from infra.stack_outputs import DataOutputs, TrainingOutputs
from scripts.lib.aws import assumed, aws_session, stack_output
from scripts.lib.cli import CheckFailed, OperatorError
from scripts.release.images import current_images
from scripts.release.records import git_commit, write_current

_MODEL_JSON = "model.json"


def inspect_model(s3: Any, uri_bucket: str, key: str) -> tuple[str, dict[str, Any]]:
    """(sha256 of model.tar.gz, its model.json) - one download, hashed and opened."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tar.gz"
        s3.download_file(uri_bucket, key, str(path))
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                digest.update(chunk)
        try:
            with tarfile.open(path, "r:gz") as archive:
                member = next((m for m in archive.getmembers() if Path(m.name).name == _MODEL_JSON), None)
                extracted = archive.extractfile(member) if member else None
                card = json.loads(extracted.read()) if extracted else None
        except (tarfile.TarError, json.JSONDecodeError, OSError) as exc:
            raise OperatorError(f"s3://{uri_bucket}/{key}: not a readable model.tar.gz ({exc})") from None
    if not isinstance(card, dict):
        raise OperatorError(
            f"s3://{uri_bucket}/{key}: no {_MODEL_JSON} in the archive (not a model artifact)"
        )
    return digest.hexdigest(), card


def model_card(card: dict[str, Any], where: str) -> ModelCard:
    """The model's model.json as a ModelCard; a card that is not one is refused, never guessed."""
    try:
        return ModelCard.model_validate(card)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise OperatorError(f"{where}: {_MODEL_JSON} field '{field}': {first['msg']}") from None


def latest_approved(session: Any, group: str, region: str) -> str:
    from sagemaker.core.resources import ModelPackage

    for package in ModelPackage.get_all(
        model_package_group_name=group,
        model_approval_status="Approved",
        sort_by="CreationTime",
        sort_order="Descending",
        session=session,
        region=region,
    ):
        return str(package.model_package_arn)
    raise OperatorError(f"model package group {group} has no Approved version (approve one first)")


def cmd_create(args: argparse.Namespace) -> int:
    own = aws_session(profile=args.profile, region=args.region)
    # The stage's account (stacks, registry, images) through --stage-role-arn when run from the pipeline account;
    # the model object is read with the caller's own credentials (the registry's bucket and key policies let it).
    session = assumed(own, args.stage_role_arn, name=f"release-create-{args.from_stage}")
    cloudformation = session.client("cloudformation")
    group = stack_output(cloudformation, f"{args.from_stage}-Data", DataOutputs.MODEL_PACKAGE_GROUP_NAME)
    arn = args.package_arn or latest_approved(session, group, session.region_name)
    from scripts.release.checks import package_facts

    status, url, metadata = package_facts(session, arn)
    if status != "Approved":
        raise CheckFailed(f"{arn} is {status}, expected Approved (python -m scripts.release approve ...)")
    try:
        bucket, key = s3_location(url)
    except ReleaseError as exc:
        raise OperatorError(f"{arn}: {exc}") from None
    sha256, card = inspect_model(own.client("s3"), bucket, key)
    parsed = model_card(card, f"s3://{bucket}/{key}")
    precisions = tuple(cast("list[Precision]", parsed.precisions()))
    data_key = stack_output(cloudformation, f"{args.from_stage}-Training", TrainingOutputs.DATA_KEY_ARN)
    metrics = {k.removeprefix("metric:"): float(v) for k, v in metadata.items() if k.startswith("metric:")}
    images = current_images(session, args, cloudformation, package_arn=arn)
    release = Release(
        release_id=args.release_id or f"r-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        created_at=datetime.now(UTC),
        git_commit=args.git_commit or git_commit(),
        images=images,
        model=ReleaseModel(
            package_arn=arn,
            approval_status=status,
            model_data_uri=url,
            sha256=sha256,
            kms_key_arn=args.model_kms_key_arn or data_key,
            metrics=metrics,
            dataset_version=str(card.get("dataset_version", "unknown")),
            card_version=str(card.get("version", "unknown")),
            precisions=precisions,
            int8_gate=Int8Gate.of(parsed.int8) if parsed.int8 else None,
        ),
        notes=args.notes or "",
    )
    path = release_path(args.releases_dir, release.release_id)
    if path.exists():
        raise OperatorError(f"{path} exists: a release is immutable, pick another --release-id")
    path.write_text(release.to_json())
    print(
        f"wrote {path} ({QUALITY_METRIC} {release.model.quality:g}, model v{release.model.package_version})"
    )
    if not args.no_promote:
        write_current(args.releases_dir, release.release_id)
        print(f"{args.releases_dir / CURRENT} -> {release.release_id}; commit both files to release it")
    return 0


def register(sub: Any) -> None:
    create = sub.add_parser(
        "create", help="a new release from a stage's latest Approved model and its images"
    )
    create.add_argument(
        "--from-stage", default="Dev", help="the stage that built the images and registered the model"
    )
    create.add_argument("--package-arn", help="this model package version instead of the latest Approved one")
    create.add_argument(
        "--serve", action="append", metavar="VARIANT=URI", help="a serve variant the stage does not run"
    )
    create.add_argument("--release-id", help="default r-<UTC timestamp>")
    create.add_argument("--git-commit", help="default: git rev-parse HEAD")
    create.add_argument("--model-kms-key-arn", help="the key of the model store (default: the Data stack's)")
    create.add_argument("--notes", help="free text kept in the record")
    create.add_argument("--no-promote", action="store_true", help="write the record, leave releases/CURRENT")
    create.add_argument(
        "--stage-role-arn", help="assume this role for the stage's account (run from another account)"
    )
    create.set_defaults(func=cmd_create)
