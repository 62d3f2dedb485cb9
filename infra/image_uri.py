"""A container image pinned by digest: ``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>@sha256:<64 hex>``,
and its two halves (repository URI, digest) as releases record them (infra/release_record.py).

What a stage config may pin instead of building an image (infra/config.py) and what the image construct turns back
into a repository and digest (infra/constructs/images.py): one pattern, so both accept the same URIs. A registry is
a 12-digit account id and an image digest is the sha256 of its manifest (Amazon ECR API Reference, ``Image`` and
``ImageIdentifier``, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_Image.html, read 2026-11-30).
"""

from __future__ import annotations

import re

# An ECR repository URI. Groups: account, region, cn (the China partition's suffix), repo.
ECR_REPOSITORY = r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?/(?P<repo>[a-z0-9._/-]+)"
IMAGE_DIGEST = r"sha256:[0-9a-f]{64}"

REPOSITORY_URI = re.compile(rf"^{ECR_REPOSITORY}$")
DIGEST = re.compile(rf"^{IMAGE_DIGEST}$")
# Groups: those of ECR_REPOSITORY, and digest.
PINNED_IMAGE_URI = re.compile(rf"^{ECR_REPOSITORY}@(?P<digest>{IMAGE_DIGEST})$")
