"""The images of a release: every variant of one build of the registry stage, pinned by digest in the registry's
own repositories (so every later stage pulls them through those repositories' policies)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from app.contracts import launcher_environment
from infra.release_record import SERVE_VARIANTS, ImageDigest, ReleaseImages, serve_variant_output
from infra.stack_outputs import DataOutputs, TrainingOutputs
from scripts.lib.aws import stack_outputs, stage_config
from scripts.lib.cli import OperatorError


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
    from scripts.release.checks import package_image

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
    from infra.config import load_stages  # late, and without the CDK
    from infra.stage_release import serve_variant
    from infra.stages import STAGES

    own = serve_variant(stage_config(stage).endpoint.instance_type)
    needed = {serve_variant(c.endpoint.instance_type) for c in load_stages(STAGES).values()}
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
