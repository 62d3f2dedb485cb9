"""The CLI end to end on a realistic manifest + tiny images, checked with ultralytics' own dataset checker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.contracts.dataset import validate_layout
from app.dataprep.cli import main
from infra.paths import REPO_ROOT
from tests.app.dataprep.ground_truth import write_manifest


@pytest.fixture
def built(realistic: tuple[Path, Path], tmp_path: Path) -> Path:
    manifest, root = realistic
    out = tmp_path / "dataset"
    code = main(
        ["--manifest", str(manifest), "--out", str(out), "--image-root", str(root), "--quiet",
         "--max-reject-fraction", "0.1", "--balance", "class-weights"]
    )  # fmt: skip
    assert code == 0
    return out


def test_cli_output_passes_ultralytics_dataset_check(built: Path) -> None:
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(built / "data.yaml"), autodownload=False)
    assert data["names"] == {0: "drill", 1: "hammer", 2: "screwdriver"}
    assert Path(data["train"]).is_dir() and Path(data["val"]).is_dir()


def test_cli_output_meets_the_dataset_contract(built: Path) -> None:
    info = validate_layout(built)
    assert info.label_attribute == "tools-2024-bbox"
    assert [(c.name, c.source_id) for c in info.classes] == [
        ("drill", "0"),
        ("hammer", "3"),
        ("screwdriver", "7"),
    ]
    assert info.rejected == {"failed_worker": 1}


def test_every_image_has_a_label_file_and_no_image_is_in_two_splits(built: Path) -> None:
    seen: dict[str, str] = {}
    for split in ("train", "val"):
        for image in (built / "images" / split).iterdir():
            assert (built / "labels" / split / f"{image.stem}.txt").is_file()
            assert image.name not in seen
            seen[image.name] = split
    assert len(seen) == 25  # 26 records - 1 failed worker; the collision-prone names all survive


def test_failed_worker_goes_to_the_rejects_file_with_its_line(built: Path) -> None:
    (line,) = (built / "qa" / "rejects.jsonl").read_text().splitlines()
    reject = json.loads(line)
    assert (reject["line"], reject["reason"]) == (26, "failed_worker") and "failed.jpg" in reject["record"]


def test_out_of_bounds_box_is_clipped_into_the_unit_square(built: Path) -> None:
    values = [
        float(v)
        for f in (built / "labels").rglob("*.txt")
        for ln in f.read_text().splitlines()
        for v in ln.split()[1:]
    ]
    assert values and all(0.0 <= v <= 1.0 for v in values)
    assert json.loads((built / "qa" / "report.json").read_text())["boxes_clipped"] == 1


def test_qa_outputs_are_written(built: Path) -> None:
    assert (built / "qa" / "class_distribution.png").read_bytes()[:4] == b"\x89PNG"
    assert "after balancing" in (built / "qa" / "summary.txt").read_text()


def test_too_many_rejects_exit_non_zero_with_one_line_and_keep_the_rejects(
    realistic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, root = realistic
    out = tmp_path / "strict"
    code = main(
        [
            "--manifest",
            str(manifest),
            "--out",
            str(out),
            "--image-root",
            str(root),
            "--max-reject-fraction",
            "0",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--max-reject-fraction" in err
    assert (out / "qa" / "rejects.jsonl").is_file() and not (out / "data.yaml").exists()


def test_missing_image_is_a_one_line_error(
    realistic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, root = realistic
    next(root.rglob("img3.jpg")).unlink()
    code = main(
        [
            "--manifest",
            str(manifest),
            "--out",
            str(tmp_path / "o"),
            "--image-root",
            str(root),
            "--quiet",
            "--max-reject-fraction",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "image not found" in err and len(err.splitlines()) == 1


def test_manifest_of_only_garbage_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "m", ["not json", "{}"])
    code = main(["--manifest", str(manifest), "--out", str(tmp_path / "o"), "--label-attribute", "x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "no usable records" in err


def test_help_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.dataprep", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--max-reject-fraction" in done.stdout


def test_balancing_via_cli_records_counts_before_and_after(
    realistic: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest, root = realistic
    out = tmp_path / "balanced"
    args = ["--manifest", str(manifest), "--out", str(out), "--image-root", str(root), "--quiet"]
    assert main([*args, "--max-reject-fraction", "0.1", "--balance", "cap-images=5"]) == 0
    info = validate_layout(out)
    assert info.counts_before_balancing["train"]["screwdriver"].images > 5
    assert max(c.images for c in info.counts_after_balancing["train"].values()) <= 5
    assert len(list((out / "images" / "train").iterdir())) == info.splits["train"]


def test_data_yaml_uses_relative_paths(built: Path) -> None:
    doc = yaml.safe_load((built / "data.yaml").read_text())
    assert doc["train"] == "images/train" and "path" not in doc


def test_link_mode_hard_links_local_images(realistic: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, root = realistic
    out = tmp_path / "linked"
    args = ["--manifest", str(manifest), "--out", str(out), "--image-root", str(root), "--quiet", "--link"]
    assert main([*args, "--max-reject-fraction", "0.1"]) == 0
    assert all(p.stat().st_nlink == 2 for p in (out / "images").rglob("*.*"))


def test_dry_run_plans_without_writing(
    realistic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, _ = realistic
    out = tmp_path / "dry"
    assert (
        main(["--manifest", str(manifest), "--out", str(out), "--dry-run", "--max-reject-fraction", "0.1"])
        == 0
    )
    assert "planned: 25 images" in capsys.readouterr().out and not out.exists()
