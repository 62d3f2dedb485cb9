"""Two shards, each copying its part of the same plan, make exactly the dataset one worker makes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.dataprep.cli import main
from app.dataprep.shards import SHARDS_DIR


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != SHARDS_DIR  # the commit markers
    }


@pytest.mark.parametrize("order", [(1, 0), (0, 1)])
def test_two_shards_write_one_consistent_dataset_committed_by_the_last(
    realistic: tuple[Path, Path], tmp_path: Path, order: tuple[int, int]
) -> None:
    manifest, root = realistic
    common = ["--manifest", str(manifest), "--image-root", str(root), "--quiet", "--max-reject-fraction", "0.1",
              "--balance", "oversample"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "single")]) == 0
    assert not (tmp_path / "single" / SHARDS_DIR).exists()  # one worker: no markers, as before
    shared = tmp_path / "sharded"
    first, second = order
    assert main([*common, "--out", str(shared), "--shard-index", str(first), "--shard-count", "2"]) == 0
    assert not (shared / "dataset.json").exists()  # half the images: training must not start yet
    assert main([*common, "--out", str(shared), "--shard-index", str(second), "--shard-count", "2"]) == 0
    assert (shared / "dataset.json").is_file()
    assert tree(shared) == tree(tmp_path / "single")


def test_each_shard_copies_only_its_part(realistic: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, root = realistic
    common = [
        "--manifest",
        str(manifest),
        "--image-root",
        str(root),
        "--quiet",
        "--max-reject-fraction",
        "0.1",
    ]
    assert main([*common, "--out", str(tmp_path / "a"), "--shard-index", "0", "--shard-count", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--shard-index", "1", "--shard-count", "2"]) == 0
    a = {p.name for p in (tmp_path / "a" / "images").rglob("*.*")}
    b = {p.name for p in (tmp_path / "b" / "images").rglob("*.*")}
    assert a and b and not a & b
