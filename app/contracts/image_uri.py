"""A container image pinned by digest: ``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>@sha256:<64 hex>``.

What a stage config may pin instead of building an image (infra/config.py) and what the image construct turns back
into a repository and digest (infra/constructs/images.py): one pattern, so both accept the same URIs. A registry is
a 12-digit account id and an image digest is the sha256 of its manifest (Amazon ECR API Reference, ``Image`` and
``ImageIdentifier``, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_Image.html, read 2026-11-30).
"""

from __future__ import annotations

import re

# Groups: account, region, cn (the China partition's suffix), repo, digest.
PINNED_IMAGE_URI = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)
