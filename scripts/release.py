"""Releases, from an Approved model version to Prod: create, inspect, approve, promote, roll back, and the gates.

    python -m scripts.release create --from-stage Dev [--package-arn ARN] [--serve gpu=<uri>]
    python -m scripts.release show [RELEASE_ID]            # default: the current release (releases/CURRENT)
    python -m scripts.release diff OLD_ID [NEW_ID]
    python -m scripts.release approve --stage Dev --version 7 [--reason ...]   # or: reject
    python -m scripts.release promote RELEASE_ID           # make it current: the pipeline deploys it Dev -> Prod
    python -m scripts.release rollback --stage Prod [--to RELEASE_ID]
    python -m scripts.release history --stage Prod
    python -m scripts.release preflight --stage Staging [--release-file F] [--stage-role-arn ARN]
    python -m scripts.release verify --stage Dev [--release-file F] [--stage-role-arn ARN] [--load-requests 50]
    python -m scripts.release cleanup --stage Prod --keep 3 [--apply]
    python -m scripts.release compare --stage Staging [--last 200] [--out DIR] [--candidate R] [--champion R]

A release is one immutable record, ``releases/<id>.json`` (app/contracts/release.py); ``releases/CURRENT`` names
the one every stage deploys. Promoting or rolling back changes only that pointer: commit it and the pipeline
deploys the record through its gates (docs/releasing.md). Model packages go through the SageMaker Python SDK
(``sagemaker.core.resources``), everything else through boto3. Exit codes: scripts/cli.py (3: a gate said no).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from app.contracts import launcher_environment
from app.contracts.artifact import ModelCard, Precision
from app.contracts.release import (
    CURRENT,
    QUALITY_METRIC,
    SERVE_VARIANTS,
    ImageDigest,
    Int8Gate,
    Release,
    ReleaseError,
    ReleaseImages,
    ReleaseModel,
    current_release_id,
    load_current,
    load_release,
    release_path,
    s3_location,
    serve_variant_output,
)
from app.contracts.stack_outputs import DataOutputs, ServingOutputs, TrainingOutputs
from infra.paths import RELEASES_DIR, REPO_ROOT
from scripts import cli
from scripts.cli import (
    CheckFailed,
    OperatorError,
    aws_session,
    command,
    existing_file,
    fraction,
    non_negative_int,
    positive_int,
    stack_output,
    stack_outputs,
    stage_config,
    stage_name,
)

_MODEL_JSON = "model.json"


# ------------------------------------------------------------------------------------------------ helpers
def read_release(path: Path | None, releases_dir: Path) -> Release:
    try:
        return load_release(path) if path else load_current(releases_dir)
    except ReleaseError as exc:
        raise OperatorError(str(exc)) from None


def by_id(releases_dir: Path, release_id: str) -> Release:
    try:
        return load_release(release_path(releases_dir, release_id))
    except ReleaseError as exc:
        raise OperatorError(str(exc)) from None


def assumed(session: Any, role_arn: str | None, *, name: str) -> Any:
    """A session in the stage's account: ``role_arn`` assumed, or ``session`` itself."""
    if not role_arn:
        return session
    import boto3

    credentials = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=session.region_name,
    )


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


def resolve_digest(ecr: Any, uri: str) -> ImageDigest:
    """``<repo>:<tag>`` or ``<repo>@sha256:...`` -> repository + digest (ECR DescribeImages)."""
    repository, _, reference = uri.partition("@") if "@" in uri else uri.rpartition(":")
    if not repository or not reference:
        raise OperatorError(f"image {uri}: expected '<repository>:<tag>' or '<repository>@sha256:<digest>'")
    if reference.startswith("sha256:"):
        return ImageDigest(repository=repository, digest=reference)
    name = repository.split("/", 1)[1]
    [detail] = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": reference}])["imageDetails"]
    return ImageDigest(repository=repository, digest=detail["imageDigest"])


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OperatorError(f"cannot read the git commit ({exc}); pass --git-commit") from None
    return out.stdout.strip()


def write_current(releases_dir: Path, release_id: str) -> None:
    by_id(releases_dir, release_id)  # refuse a pointer to a record that is missing or invalid
    (releases_dir / CURRENT).write_text(release_id + "\n")


# ------------------------------------------------------------------------------------------------ commands
def cmd_create(args: argparse.Namespace) -> int:
    own = aws_session(profile=args.profile, region=args.region)
    # The stage's account (stacks, registry, images) through --stage-role-arn when run from the pipeline account;
    # the model object is read with the caller's own credentials (the registry's bucket and key policies let it).
    session = assumed(own, args.stage_role_arn, name=f"release-create-{args.from_stage}")
    cloudformation = session.client("cloudformation")
    group = stack_output(cloudformation, f"{args.from_stage}-Data", DataOutputs.MODEL_PACKAGE_GROUP_NAME)
    arn = args.package_arn or latest_approved(session, group, session.region_name)
    from scripts.release_checks import package_facts

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


def shared_copy(ecr: Any, data_outputs: dict[str, str], name: str, image: ImageDigest) -> ImageDigest:
    """``image`` in the stage's own ``name`` repository (the one whose policy lets later stages pull): copied there
    by digest (scripts/promote_image.py, same bytes) when it lives elsewhere, e.g. in CDK's asset repository."""
    from scripts.promote_image import ImageRef, promote

    target = data_outputs[DataOutputs.repository_uri(name)]
    if image.repository == target:
        return image
    try:
        pinned = promote(ecr, ecr, ImageRef.parse(image.uri, what=name), target, dry_run=False)
    except OperatorError as exc:
        raise OperatorError(f"image {name}: {exc}") from None
    repository, _, digest = pinned.partition("@")
    return ImageDigest(repository=repository, digest=digest)


def current_images(
    session: Any, args: argparse.Namespace, cloudformation: Any, *, package_arn: str
) -> ReleaseImages:
    """Every image of one build of the registry stage, in its Data repositories (copied there by digest when built
    as CDK assets): dataprep and train as its stacks run them, the stage's serve variant as the model package was
    registered with (so a first release needs no endpoint yet), every other serve variant from the registry's
    ``Serve<Variant>ImageUri`` outputs (the same build), never from an earlier record."""
    from scripts.release_checks import package_image

    stage = args.from_stage
    ecr = session.client("ecr")
    data = stack_outputs(
        cloudformation,
        f"{stage}-Data",
        required=[DataOutputs.repository_uri(n) for n in ("dataprep", "train", "serve")],
    )
    runner_key, dataprep_key = TrainingOutputs.RUNNER_FUNCTION_NAME, TrainingOutputs.DATAPREP_IMAGE_URI
    training = stack_outputs(cloudformation, f"{stage}-Training", required=[runner_key, dataprep_key])
    runner = session.client("lambda").get_function_configuration(FunctionName=training[runner_key])
    train_uri = runner["Environment"]["Variables"][launcher_environment.TRAINING_IMAGE_URI]
    from infra.app import stage_configs  # late: loads infra
    from infra.release import serve_variant

    own = serve_variant(stage_config(stage).endpoint.instance_type)
    needed = {serve_variant(c.endpoint.instance_type) for c in stage_configs().values()}
    serve_uris = registry_serve_uris(
        data,
        stage=stage,
        own=(own, package_image(session, package_arn)),
        needed=needed,
        given=args.serve or [],
    )
    uris = {
        "dataprep": training[dataprep_key],
        "train": train_uri,
        **{f"serve.{v}": u for v, u in serve_uris.items()},
    }
    check_registry_account(uris, registry=account_of(data[DataOutputs.repository_uri("serve")]), stage=stage)
    return ReleaseImages(
        dataprep=shared_copy(ecr, data, "dataprep", resolve_digest(ecr, uris["dataprep"])),
        train=shared_copy(ecr, data, "train", resolve_digest(ecr, uris["train"])),
        serve={v: shared_copy(ecr, data, "serve", resolve_digest(ecr, u)) for v, u in serve_uris.items()},  # type: ignore[misc]
    )


def check_registry_account(uris: dict[str, str], *, registry: str, stage: str) -> None:
    """OperatorError for an image outside the registry account: every stage pulls release images from there."""
    for name, uri in uris.items():
        if account_of(uri) != registry:
            raise OperatorError(
                f"images.{name}: {uri} is in account {account_of(uri)}, expected the registry account {registry} "
                f"({stage}'s build): every stage pulls release images from the registry"
            )


def account_of(uri: str) -> str:
    """The account of an ECR image or repository URI (``<account>.dkr.ecr...``)."""
    return uri.split(".", 1)[0]


def registry_serve_uris(
    data_outputs: dict[str, str],
    *,
    stage: str,
    own: tuple[str, str],
    needed: Iterable[str],
    given: Sequence[str],
) -> dict[str, str]:
    """variant -> image URI of every serve variant a stage needs: ``own`` (the stage's variant, from its package),
    ``--serve <variant>=<uri>``, else the registry's ``Serve<Variant>ImageUri`` output. A variant no source names
    is refused (the record would name an image that was never built)."""
    uris = {own[0]: own[1]}
    for item in given:
        name, _, uri = item.partition("=")
        if name not in SERVE_VARIANTS or not uri:
            raise OperatorError(f"--serve {item}: expected cpu=<image uri> or gpu=<image uri>")
        uris[name] = uri
    for variant in sorted(set(needed) - set(uris)):
        key = serve_variant_output(variant)  # type: ignore[arg-type]
        if key not in data_outputs:
            raise OperatorError(
                f"images.serve.{variant}: {stage}-Data has no {key} output (a stage serves on {variant} "
                f"instances): deploy it with `npx cdk deploy '{stage}/*' -c build_images={stage}` (the registry "
                "builds every serve variant), or pass --serve {variant}=<uri>"
            )
        uris[variant] = data_outputs[key]
    return uris


def cmd_show(args: argparse.Namespace) -> int:
    release = (
        by_id(args.releases_dir, args.release_id)
        if args.release_id
        else read_release(None, args.releases_dir)
    )
    model = release.model
    print(
        f"release   {release.release_id}  (created {release.created_at:%Y-%m-%d %H:%M} UTC, commit {release.git_commit[:12]})"
    )
    print(f"model     {model.package_group} v{model.package_version}  {model.model_data_uri}")
    print(f"          sha256 {model.sha256}  dataset {model.dataset_version}  version {model.card_version}")
    print(f"          precisions {', '.join(model.precisions)}")
    print("metrics   " + ", ".join(f"{k}={v:g}" for k, v in sorted(model.metrics.items())))
    for name, uri in release.image_uris().items():
        print(f"image     {name:<10} {uri}")
    if release.notes:
        print(f"notes     {release.notes}")
    return 0


def flat(release: Release) -> dict[str, str]:
    doc = release.model_dump(mode="json")
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            out[prefix] = json.dumps(value) if not isinstance(value, str) else value

    walk("", doc)
    return out


def diff(old: Release, new: Release) -> list[str]:
    a, b = flat(old), flat(new)
    return [
        f"{key}: {a.get(key, '-')} -> {b.get(key, '-')}"
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key) and key not in ("created_at",)
    ]


def cmd_diff(args: argparse.Namespace) -> int:
    old = by_id(args.releases_dir, args.old)
    new = by_id(args.releases_dir, args.new) if args.new else read_release(None, args.releases_dir)
    lines = diff(old, new)
    print("\n".join(lines) if lines else f"{old.release_id} and {new.release_id} deploy the same bytes")
    return 0


def cmd_approval(args: argparse.Namespace) -> int:
    from sagemaker.core.resources import ModelPackage

    session = aws_session(profile=args.profile, region=args.region)
    cloudformation = session.client("cloudformation")
    group = stack_output(cloudformation, f"{args.stage}-Data", DataOutputs.MODEL_PACKAGE_GROUP_NAME)
    target = None
    for package in ModelPackage.get_all(
        model_package_group_name=group, session=session, region=session.region_name
    ):
        if int(package.model_package_version) == args.version:
            target = package
            break
    if target is None:
        raise OperatorError(
            f"{group} has no version {args.version} (python -m scripts.training versions --stage ...)"
        )
    status = "Approved" if args.command == "approve" else "Rejected"
    target.update(
        model_approval_status=status, approval_description=(args.reason or f"{status} by an operator")[:1024]
    )
    print(f"{group} v{args.version}: {status}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    release = by_id(args.releases_dir, args.release_id)
    before = current_release_id(args.releases_dir)
    write_current(args.releases_dir, release.release_id)
    print(f"releases/CURRENT: {before} -> {release.release_id}")
    print(
        "next: git add releases && git commit -m 'release " + release.release_id + "' && git push  "
        "(the pipeline deploys it Dev -> Staging -> Prod through the gates)"
    )
    print(
        f"without a pipeline: npx cdk deploy '<Stage>/*' -c release={release.release_id}, one stage at a time"
    )
    return 0


def stage_history(ssm: Any, stage: str) -> list[dict[str, Any]]:
    from infra.constructs.training_names import release_parameter_name

    rows: list[dict[str, Any]] = []
    paginator = ssm.get_paginator("get_parameter_history")
    for page in paginator.paginate(Name=release_parameter_name(stage)):
        rows.extend(page["Parameters"])
    return sorted(rows, key=lambda r: r["Version"])


def cmd_history(args: argparse.Namespace) -> int:
    session = aws_session(profile=args.profile, region=args.region)
    rows = stage_history(session.client("ssm"), args.stage)
    if not rows:
        print(f"{args.stage}: no release deployed yet")
    for row in rows:
        when = row["LastModifiedDate"]
        print(
            f"v{row['Version']:<4} {when:%Y-%m-%d %H:%M} {row['Value']:<24} {row.get('LastModifiedUser', '')}"
        )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.to:
        target = args.to
    else:
        session = aws_session(profile=args.profile, region=args.region)
        deployed = [r["Value"] for r in stage_history(session.client("ssm"), args.stage)]
        earlier = [r for r in deployed[:-1] if r != (deployed[-1] if deployed else None)]
        if not earlier:
            raise OperatorError(
                f"{args.stage} has no earlier release to roll back to (history: {deployed or 'none'})"
            )
        target = earlier[-1]
    release = by_id(args.releases_dir, target)
    before = current_release_id(args.releases_dir)
    write_current(args.releases_dir, release.release_id)
    print(f"releases/CURRENT: {before} -> {release.release_id} (rolling {args.stage} back)")
    print(
        f"through the pipeline: git add releases/CURRENT && git commit -m 'roll back to {target}' && git push"
    )
    print(f"now, this stage only: npx cdk deploy '{args.stage}/*' -c release={target}")
    return 0


def _gate(args: argparse.Namespace, name: str) -> tuple[Any, Release, Any, Any]:
    """(stage config, release, the caller's session, a session in the stage's account) of a gate command."""
    config, release = stage_config(args.stage), read_release(args.release_file, args.releases_dir)
    session = aws_session(profile=args.profile, region=args.region or release.model.region)
    return config, release, session, assumed(session, args.stage_role_arn, name=f"{name}-{args.stage}")


def _verdict(report: Any, *, passed: str, failed: str) -> int:
    """Print a gate's report; a FAIL line makes it a failed check (exit 3)."""
    print(report.render())
    if not report.ok:
        raise CheckFailed(f"{failed} (FAIL lines above)")
    print(f"{passed}: OK")
    return 0


def cmd_preflight(args: argparse.Namespace) -> int:
    from scripts.release_checks import preflight
    from scripts.release_evidence import replay_report_path

    config, release, session, stage = _gate(args, "preflight")
    report = preflight(
        release,
        config,
        registry=session,
        s3=session.client("s3"),
        cloudformation=stage.client("cloudformation"),
        sagemaker=stage.client("sagemaker"),
        service_quotas=stage.client("service-quotas"),
        ecr=session.client("ecr"),  # the registry's repositories, through their policies
        replay_report=replay_report_path(args.releases_dir, release, args.replay_report),
    )
    what = f"preflight of {release.release_id} for {args.stage}"
    return _verdict(report, passed=what, failed=f"{what} failed")


def cmd_verify(args: argparse.Namespace) -> int:
    from scripts.release_checks import protect_stacks, verify_release
    from scripts.verify_endpoint import sample_jpeg

    config, release, _, stage = _gate(args, "verify")
    if args.protect_stack:
        protect_stacks(stage.client("cloudformation"), args.protect_stack)
    report = verify_release(
        release,
        config,
        cloudformation=stage.client("cloudformation"),
        sagemaker=stage.client("sagemaker"),
        runtime=stage.client("sagemaker-runtime"),
        image=args.image.read_bytes() if args.image else sample_jpeg(),
        load_requests=args.load_requests,
        load_concurrency=args.load_concurrency,
        ssm=stage.client("ssm"),  # a pass becomes the stage's history (release history / rollback)
        protected=args.protect_stack,
    )
    return _verdict(
        report,
        passed=f"{args.stage} runs {release.release_id}",
        failed=f"{args.stage} does not run release {release.release_id} as expected",
    )


def cleanup_candidates(
    sagemaker: Any, *, endpoint_config_in_use: str, releases: Sequence[Release], keep: int, stage_tag: str
) -> tuple[list[str], list[str]]:
    """(endpoint configs, models) of the stage that no release references and that are not among the newest
    ``keep`` of their kind; the endpoint's running config and its model are never candidates."""
    referenced = {(uri, r.model.model_data_uri) for r in releases for uri in r.image_uris().values()}

    def tagged(arn: str) -> bool:
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn).get("Tags", [])}
        return tags.get("stage") == stage_tag

    def stage_resources(operation: str, listed: str, arn: str) -> list[dict[str, Any]]:
        """The stage's resources of one kind (tagged with its stage), newest first."""
        found: list[dict[str, Any]] = []
        pages = sagemaker.get_paginator(operation).paginate(SortBy="CreationTime", SortOrder="Descending")
        for page in pages:
            found.extend(item for item in page[listed] if tagged(item[arn]))
        return found

    in_use = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint_config_in_use)
    models_in_use = {v["ModelName"] for v in in_use["ProductionVariants"]}
    models = stage_resources("list_models", "Models", "ModelArn")
    stale_models = []
    for model in models[keep:]:
        if model["ModelName"] in models_in_use:
            continue
        container = sagemaker.describe_model(ModelName=model["ModelName"]).get("PrimaryContainer", {})
        if (container.get("Image"), container.get("ModelDataUrl")) not in referenced:
            stale_models.append(model["ModelName"])
    configs = stage_resources("list_endpoint_configs", "EndpointConfigs", "EndpointConfigArn")
    stale_configs = []
    for config in configs[keep:]:
        name = config["EndpointConfigName"]
        if name == endpoint_config_in_use:
            continue
        variants = sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
        if all(
            v["ModelName"] in stale_models or v["ModelName"] not in {m["ModelName"] for m in models}
            for v in variants
        ):
            stale_configs.append(name)
    return stale_configs, stale_models


def cmd_cleanup(args: argparse.Namespace) -> int:
    session = aws_session(profile=args.profile, region=args.region)
    cloudformation = session.client("cloudformation")
    endpoint = stack_output(cloudformation, f"{args.stage}-Serving", ServingOutputs.ENDPOINT_NAME)
    sagemaker = session.client("sagemaker")
    running = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    releases = [load_release(p) for p in sorted(args.releases_dir.glob("*.json"))]
    configs, models = cleanup_candidates(
        sagemaker,
        endpoint_config_in_use=running,
        releases=releases,
        keep=args.keep,
        stage_tag=stage_config(args.stage).tags.get("stage", args.stage.lower()),
    )
    verb = "deleting" if args.apply else "would delete"
    for name in configs:
        print(f"{verb} endpoint config {name}")
        if args.apply:
            sagemaker.delete_endpoint_config(EndpointConfigName=name)
    for name in models:
        print(f"{verb} model {name}")
        if args.apply:
            sagemaker.delete_model(ModelName=name)
    if not (configs or models):
        print(
            f"{args.stage}: nothing to clean up (kept the newest {args.keep} and everything a release references)"
        )
    elif not args.apply:
        print("dry run: pass --apply to delete")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from scripts.replay.command import compare  # the replay library (scripts/replay/)

    own = aws_session(profile=args.profile, region=args.region)

    def last_verified(stage: str) -> Release | None:
        history = stage_history(own.client("ssm"), stage)
        return by_id(args.releases_dir, history[-1]["Value"]) if history else None

    return compare(
        args,
        own=own,
        stage=assumed(own, args.stage_role_arn, name=f"compare-{args.stage}"),
        current=lambda: read_release(None, args.releases_dir),
        last_verified=last_verified,
    )


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    top = cli.ArgumentParser(
        prog="python -m scripts.release",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--region", help="AWS region (default: the release's / the SDK default)")
    top.add_argument("--profile", help="AWS profile")
    top.add_argument("--releases-dir", type=Path, default=RELEASES_DIR, help=argparse.SUPPRESS)
    sub = top.add_subparsers(dest="command", required=True)

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

    show = sub.add_parser("show", help="print a release (default: the current one)")
    show.add_argument("release_id", nargs="?")
    show.set_defaults(func=cmd_show)

    diff_ = sub.add_parser("diff", help="what changes between two releases (default new: the current one)")
    diff_.add_argument("old")
    diff_.add_argument("new", nargs="?")
    diff_.set_defaults(func=cmd_diff)

    for name, what in (("approve", "Approved"), ("reject", "Rejected")):
        approval = sub.add_parser(name, help=f"mark a model package version {what} in a stage's registry")
        approval.add_argument("--stage", required=True, type=stage_name)
        approval.add_argument("--version", required=True, type=positive_int, help="the version number")
        approval.add_argument("--reason", help="kept as the approval description")
        approval.set_defaults(func=cmd_approval)

    promote = sub.add_parser("promote", help="make a release current (the pipeline deploys it Dev -> Prod)")
    promote.add_argument("release_id")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="make the stage's previous release current again")
    rollback.add_argument("--stage", required=True, type=stage_name)
    rollback.add_argument("--to", help="this release instead of the one the stage ran before")
    rollback.set_defaults(func=cmd_rollback)

    history = sub.add_parser("history", help="the releases a stage has run, oldest first")
    history.add_argument("--stage", required=True, type=stage_name)
    history.set_defaults(func=cmd_history)

    for name, func, what in (
        ("preflight", cmd_preflight, "the gate before a stage deploys a release"),
        (
            "verify",
            cmd_verify,
            "the gate after: the endpoint runs the release, answers, survives a short load",
        ),
    ):
        gate = sub.add_parser(name, help=what)
        gate.add_argument("--stage", required=True, type=stage_name)
        gate.add_argument("--release-file", type=existing_file, help="default: the current release")
        gate.add_argument("--stage-role-arn", help="assume this role for the stage's account")
        gate.set_defaults(func=func)
        if name == "preflight":
            gate.add_argument(
                "--replay-report",
                type=existing_file,
                help="replay.json of release compare (default: releases/replay/<release id>.json if present)",
            )
        if name == "verify":
            gate.add_argument("--image", type=existing_file, help="a JPEG to send (default: a generated one)")
            gate.add_argument("--load-requests", type=non_negative_int, default=0, help="bounded load smoke")
            gate.add_argument("--load-concurrency", type=positive_int, default=4)
            gate.add_argument(
                "--protect-stack",
                action="append",
                default=[],
                metavar="STACK",
                help="turn termination protection on for this stack, and check it (repeatable; the pipeline "
                "passes the stage's protected stacks: CDK Pipelines ignores termination protection)",
            )

    cleanup = sub.add_parser("cleanup", help="delete retained models/endpoint configs no release references")
    cleanup.add_argument("--stage", required=True, type=stage_name)
    cleanup.add_argument("--keep", type=positive_int, default=3, help="newest N of each kind always kept")
    cleanup.add_argument("--apply", action="store_true", help="delete (default: print what would go)")
    cleanup.set_defaults(func=cmd_cleanup)

    compare = sub.add_parser(
        "compare",
        help="replay a stage's captured requests through candidate and champion; label-free agreement",
    )
    compare.add_argument("--stage", required=True, type=stage_name, help="whose data capture to replay")
    compare.add_argument(
        "--last", type=positive_int, default=200, help="the newest N requests (not synthetic)"
    )
    compare.add_argument("--out", type=Path, help="report and images (default build/replay/<stage>)")
    compare.add_argument(
        "--candidate",
        help="release id, model package ARN, s3://.../model.tar.gz or local artifact "
        "(default: the current release)",
    )
    compare.add_argument(
        "--champion", help="the same forms (default: the release the next stage last verified)"
    )
    compare.add_argument(
        "--iou", type=fraction, default=0.5, help="boxes match at this IoU or more (same class)"
    )
    compare.add_argument("--conf", type=fraction, help="confidence threshold (default: the serving default)")
    compare.add_argument(
        "--keep", type=non_negative_int, default=12, help="images drawn where they disagree most"
    )
    compare.add_argument(
        "--stage-role-arn", help="assume this role for the stage's account (capture, endpoint)"
    )
    compare.set_defaults(func=cmd_compare)
    return top


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
