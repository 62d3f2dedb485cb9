"""ContainerImage: one of the platform's images (dataprep, train, serve) as an image URI plus a pull grant.

Either a stage pins a pre-built ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<digest>`` (config
``images.<name>``) so the exact digest a previous stage ran is promoted, or the image is a CDK Docker image asset
built from ``containers/<name>/Dockerfile`` with the repository root as build context. The context is an allow-list
(``BUILD_CONTEXT``): only the files an image needs are staged and hashed, so a change to tests, docs or another
part never rebuilds it. Nothing here looks anything up: synth stays offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

from app.contracts import cuda, instance_types
from infra.image_uri import PINNED_IMAGE_URI
from infra.paths import REPO_ROOT

ImageName = Literal["dataprep", "train", "serve"]

# What each image's build may see (paths relative to the repo root; Docker ignore syntax). Add a path here when a
# Dockerfile COPYs something new; everything else is left out of the context and out of the asset hash.
_COMMON: tuple[str, ...] = ("app/__init__.py", "app/contracts")
BUILD_CONTEXT: dict[str, tuple[str, ...]] = {
    "dataprep": (*_COMMON, "app/dataprep", "containers/dataprep"),
    "train": (*_COMMON, "app/training", "containers/train"),
    "serve": (*_COMMON, "app/serving", "containers/serve"),
}
_NEVER = ("**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache", "**/.DS_Store")


def serve_build_args(instance_type: str) -> dict[str, str]:
    """Build arguments of the serve image for an endpoint instance type: the CUDA variant (onnxruntime-gpu, on the
    CUDA that app/contracts/cuda.py declares) on GPU instances, the slim CPU image elsewhere. A pinned serve digest
    must be of the matching variant, built from the same declaration."""
    return serve_variant_build_args("gpu" if instance_types.is_gpu(instance_type) else "cpu")


def serve_variant_build_args(variant: Literal["cpu", "gpu"]) -> dict[str, str]:
    """Build arguments of one serve variant (the registry stage builds both)."""
    if variant == "gpu":
        return {"VARIANT": "gpu", **cuda.build_args("serve")}
    return {}


def train_build_args() -> dict[str, str]:
    """Build arguments of the training image: the CUDA base that app/contracts/cuda.py declares."""
    return cuda.build_args("train")


def context_exclude(name: ImageName) -> list[str]:
    """Docker-ignore patterns that leave only BUILD_CONTEXT[name] in the build context."""
    return ["*", *(f"!{path}" for path in BUILD_CONTEXT[name]), *_NEVER]


class ContainerImage(Construct):
    """An image the platform runs: ``image_uri`` for SageMaker/Lambda, ``grant_pull`` for the roles that run it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: ImageName,
        pinned_uri: str | None,
        build_args: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.repository: ecr.IRepository
        if pinned_uri is not None:
            match = PINNED_IMAGE_URI.match(pinned_uri)
            if not match:
                raise ValueError(
                    f"images.{name}: expected '<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<64 hex>', "
                    f"got '{pinned_uri}'"
                )
            partition = "aws-cn" if match["cn"] else cdk.Stack.of(self).partition
            self.repository = ecr.Repository.from_repository_attributes(
                self,
                "Repository",
                repository_arn=f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}",
                repository_name=match["repo"],
            )
            self.image_uri: str = pinned_uri
            self.digest: str | None = match["digest"]
            self.asset: ecr_assets.DockerImageAsset | None = None
        else:
            dockerfile = Path("containers") / name / "Dockerfile"
            if not (REPO_ROOT / dockerfile).is_file():
                raise FileNotFoundError(f"image '{name}': {REPO_ROOT / dockerfile} does not exist")
            self.asset = ecr_assets.DockerImageAsset(
                self,
                "Asset",
                directory=str(REPO_ROOT),
                file=str(dockerfile),
                platform=ecr_assets.Platform.LINUX_AMD64,
                exclude=context_exclude(name),
                ignore_mode=cdk.IgnoreMode.DOCKER,
                display_name=f"{name} image",
                build_args=dict(build_args) if build_args else None,
            )
            self.repository = self.asset.repository
            self.image_uri = self.asset.image_uri
            self.digest = None

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` pull this image (repository-scoped actions plus ecr:GetAuthorizationToken on ``*``,
        which ECR only supports on ``*``: the role's owner acknowledges that one IAM5 finding)."""
        return self.repository.grant_pull(grantee)
