"""Data prep test fixtures; the manifest and image builders they use are in ground_truth.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.dataprep.ground_truth import make_images, realistic_records, write_manifest


@pytest.fixture
def realistic(tmp_path: Path) -> tuple[Path, Path]:
    """(manifest path, image root) of ``realistic_records()``: the manifest written, an image for every record."""
    items, refs = realistic_records()
    manifest = write_manifest(tmp_path / "output.manifest", items)
    root = tmp_path / "images"
    make_images(root, refs)
    return manifest, root
