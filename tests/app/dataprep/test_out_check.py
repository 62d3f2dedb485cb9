"""A non-empty --out: refused when it holds another dataset's files, accepted for a re-run of the same plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.dataprep.cli import main


def _args(realistic: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    manifest, root = realistic
    return ["--manifest", str(manifest), "--image-root", str(root), "--quiet", "--max-reject-fraction", "0.1",
            "--out", str(out), *extra]  # fmt: skip


def test_rerunning_the_same_plan_into_its_out_is_idempotent(
    realistic: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    assert main(_args(realistic, out)) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert main(_args(realistic, out)) == 0
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == before


def test_out_holding_another_version_is_refused_naming_both(
    realistic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    assert main(_args(realistic, out)) == 0
    capsys.readouterr()
    assert main(_args(realistic, out, "--seed", "7")) == 2  # another split: another version
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(out / "dataset.json") in err and "already holds dataset version" in err and "expected" in err


def test_stale_images_without_dataset_json_are_refused(
    realistic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    (out / "images" / "train").mkdir(parents=True)
    (out / "images" / "train" / "from-an-older-run.jpg").write_bytes(b"jpeg")
    assert main(_args(realistic, out)) == 2
    err = capsys.readouterr().err
    assert "images/train/from-an-older-run.jpg" in err and "not in this plan" in err
    assert not (out / "dataset.json").exists()
