"""Promote one container image, by digest, into a stage's ECR repository (the next stage in promotion order).

Copies the exact image (manifest bytes and layers, so the digest stays the same) with the ECR API only - no Docker
daemon - into the repository that the stage's ``Data`` stack created (found through its stack outputs, since the
repositories have no physical names), tags it ``sha256-<digest>`` (tags are immutable), verifies the digest and
prints the release record field that pins it (``images.<name>``, ``images.serve.<variant>`` for the variant the stage
serves): a stage deploys the images its release names, and synth refuses image pins in ``infra/stages.py`` while a
release is current.

    python -m scripts.promote_image --image serve \
        --source 111122223333.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets-...:<tag> \
        --to-stage Staging [--region eu-west-1] [--dry-run]

Exit status (scripts/lib/cli.py): 0 promoted (or resolved, with --dry-run), 1 error, 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from infra.image_uri import ECR_REPOSITORY, IMAGE_DIGEST
from infra.release_record import ServeVariant
from infra.stack_outputs import DataOutputs
from infra.stage_release import serve_variant
from scripts.lib import aws, cli
from scripts.lib.cli import OperatorError

IMAGE_NAMES = ("dataprep", "train", "serve")
# An image by tag or by digest (ECR image tags: up to 128 of these characters).
_URI = re.compile(rf"^{ECR_REPOSITORY}(?::(?P<tag>[A-Za-z0-9_.-]{{1,128}})|@(?P<digest>{IMAGE_DIGEST}))$")
_SINGLE_MANIFESTS = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
_PART = 20 * 1024 * 1024


@dataclass(frozen=True)
class ImageRef:
    registry: str
    region: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, uri: str, *, what: str) -> ImageRef:
        match = _URI.match(uri)
        if not match:
            raise OperatorError(
                f"{what}: expected '<account>.dkr.ecr.<region>.amazonaws.com/<repo>(:<tag>|@sha256:<digest>)', "
                f"got '{uri}'"
            )
        return cls(match["account"], match["region"], match["repo"], match["tag"], match["digest"])

    @property
    def image_id(self) -> dict[str, str]:
        return {"imageDigest": self.digest} if self.digest else {"imageTag": str(self.tag)}


def target_repository_uri(cloudformation: Any, stage: str, image: str) -> str:
    """The URI of ``image``'s repository in ``stage``, from the ``<Stage>-Data`` stack outputs."""
    return aws.stack_output(cloudformation, f"{stage}-Data", DataOutputs.repository_uri(image))


def source_manifest(ecr: Any, source: ImageRef) -> tuple[str, str, str]:
    """(manifest, media type, digest) of the source image; refuses manifest lists (we build linux/amd64 only)."""
    try:
        response = ecr.batch_get_image(
            registryId=source.registry,
            repositoryName=source.repository,
            imageIds=[source.image_id],
            acceptedMediaTypes=list(_SINGLE_MANIFESTS),
        )
    except ecr.exceptions.RepositoryNotFoundException:
        raise OperatorError(
            f"--source: repository '{source.repository}' does not exist in registry {source.registry} "
            f"({source.region}); copy the URI from the previous stage's image (e.g. its stack's template)"
        ) from None
    if not response["images"]:
        reasons = "; ".join(f"{f['failureCode']}: {f['failureReason']}" for f in response.get("failures", []))
        raise OperatorError(f"source image not found: {reasons or source}")
    image = response["images"][0]
    media_type = image.get("imageManifestMediaType", _SINGLE_MANIFESTS[0])
    if media_type not in _SINGLE_MANIFESTS:
        raise OperatorError(f"source is a {media_type}; promote a single linux/amd64 image manifest")
    return image["imageManifest"], media_type, image["imageId"]["imageDigest"]


def copy_layers(source_ecr: Any, ecr: Any, source: ImageRef, target: ImageRef, digests: list[str]) -> int:
    """Copy the blobs the target repository lacks (``ecr``: a client in the target's region); returns how many."""
    available = ecr.batch_check_layer_availability(
        registryId=target.registry, repositoryName=target.repository, layerDigests=digests
    )
    present = {
        layer["layerDigest"]
        for layer in available.get("layers", [])
        if layer["layerAvailability"] == "AVAILABLE"
    }
    missing = [d for d in digests if d not in present]
    for digest in missing:
        url = source_ecr.get_download_url_for_layer(
            registryId=source.registry, repositoryName=source.repository, layerDigest=digest
        )["downloadUrl"]
        upload = ecr.initiate_layer_upload(registryId=target.registry, repositoryName=target.repository)
        first = 0
        with urllib.request.urlopen(url, timeout=300) as blob:  # presigned S3 URL from ECR
            while chunk := blob.read(_PART):
                ecr.upload_layer_part(
                    registryId=target.registry,
                    repositoryName=target.repository,
                    uploadId=upload["uploadId"],
                    partFirstByte=first,
                    partLastByte=first + len(chunk) - 1,
                    layerPartBlob=chunk,
                )
                first += len(chunk)
        ecr.complete_layer_upload(
            registryId=target.registry,
            repositoryName=target.repository,
            uploadId=upload["uploadId"],
            layerDigests=[digest],
        )
    return len(missing)


def promote(source_ecr: Any, ecr: Any, source: ImageRef, target_repo_uri: str, *, dry_run: bool) -> str:
    """Copy ``source`` into ``target_repo_uri`` keeping its digest; returns the pinned target URI.

    ``source_ecr`` and ``ecr`` are clients in the source's and the target's region (stages may differ)."""
    manifest, media_type, digest = source_manifest(source_ecr, source)
    target = ImageRef.parse(f"{target_repo_uri}@{digest}", what="target repository")
    pinned = f"{target_repo_uri}@{digest}"
    if dry_run:
        return pinned
    try:
        parsed = json.loads(manifest)
        blobs = [parsed["config"]["digest"], *(layer["digest"] for layer in parsed["layers"])]
    except (ValueError, KeyError, TypeError) as exc:
        raise OperatorError(
            f"source image {digest}: its {media_type} manifest is not the JSON it should be ({exc!r})"
        ) from None
    copied = copy_layers(source_ecr, ecr, source, target, blobs)
    # Already promoted (same tag, same manifest) is fine.
    with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(
            registryId=target.registry,
            repositoryName=target.repository,
            imageManifest=manifest,
            imageManifestMediaType=media_type,
            imageTag=digest.replace(":", "-"),
        )
    (described,) = ecr.describe_images(
        registryId=target.registry, repositoryName=target.repository, imageIds=[{"imageDigest": digest}]
    )["imageDetails"]
    if described["imageDigest"] != digest:
        raise OperatorError(f"target digest {described['imageDigest']} != source digest {digest}")
    print(f"copied {copied} of {len(blobs)} blobs", file=sys.stderr)
    return pinned


def _source(text: str) -> ImageRef:
    try:
        return ImageRef.parse(text, what="--source")
    except OperatorError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--source: ")) from None


def parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m scripts.promote_image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, choices=IMAGE_NAMES)
    parser.add_argument(
        "--source",
        required=True,
        type=_source,
        help="ECR image URI (tag or digest) that the previous stage ran",
    )
    parser.add_argument(
        "--to-stage", required=True, type=cli.stage_name, help="stage construct id, e.g. Staging"
    )
    parser.add_argument("--region", help="region of the target stage (default: the AWS SDK default)")
    parser.add_argument("--profile", help="AWS profile (default: the environment's)")
    parser.add_argument("--dry-run", action="store_true", help="resolve source and target, copy nothing")
    return parser


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    source: ImageRef = args.source
    # The serve variant the stage runs, from its config: checked before any AWS call.
    variant = serve_variant(aws.stage_config(args.to_stage).endpoint.instance_type)
    session = aws.aws_session(profile=args.profile, region=args.region)
    target_uri = target_repository_uri(session.client("cloudformation"), args.to_stage, args.image)
    target_region = target_uri.split(".")[3]  # <account>.dkr.ecr.<region>.amazonaws.com/<repo>
    pinned = promote(
        session.client("ecr", region_name=source.region),
        session.client("ecr", region_name=target_region),
        source,
        target_uri,
        dry_run=args.dry_run,
    )
    print(release_setting(args.to_stage, args.image, pinned, variant=variant))
    print("(a field of the release record, releases/<id>.json: docs/releasing.md)", file=sys.stderr)
    return 0


def release_setting(stage: str, image: str, pinned: str, *, variant: ServeVariant) -> str:
    """``Staging: images.serve.gpu = {"repository": ..., "digest": ...}``: the release record's field (what
    infra.release_record.parse_release reads), not a stage config pin (synth refuses those with a release)."""
    field = f"images.{image}.{variant}" if image == "serve" else f"images.{image}"
    repository, _, digest = pinned.partition("@")
    return f"{stage}: {field} = {json.dumps({'repository': repository, 'digest': digest})}"


if __name__ == "__main__":
    sys.exit(main())
