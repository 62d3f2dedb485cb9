"""The SageMaker Processing entrypoint: Processing paths, env options, shard from resourceconfig.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.contracts.dataset import validate_layout
from app.dataprep.cli import main
from app.dataprep.processing import processing_argv


@pytest.fixture
def opt_ml(realistic: tuple[Path, Path], tmp_path: Path) -> Path:
    """A fake /opt/ml/processing with the manifest and images as Processing inputs."""
    manifest, root = realistic
    processing = tmp_path / "opt" / "processing"
    (processing / "input" / "manifest").mkdir(parents=True)
    shutil.copy(manifest, processing / "input" / "manifest" / "output.manifest")
    shutil.copytree(root, processing / "input" / "images")
    return processing


def test_defaults_follow_processing_paths(opt_ml: Path, tmp_path: Path) -> None:
    argv = processing_argv([], {}, root=opt_ml, resource_config=tmp_path / "none.json")
    assert isinstance(argv, list)
    assert argv[argv.index("--manifest") + 1] == str(opt_ml / "input" / "manifest" / "output.manifest")
    assert argv[argv.index("--out") + 1] == str(opt_ml / "output")
    assert argv[argv.index("--image-root") + 1] == str(opt_ml / "input" / "images")


def test_environment_options_apply_and_arguments_win(opt_ml: Path, tmp_path: Path) -> None:
    env = {
        "DATAPREP_VAL_FRACTION": "0.3",
        "DATAPREP_SEED": "5",
        "DATAPREP_BALANCE": "max-ratio=3 class-weights",
    }
    argv = processing_argv(["--seed", "9"], env, root=opt_ml, resource_config=tmp_path / "none.json")
    assert isinstance(argv, list)
    assert argv[argv.index("--val-fraction") + 1] == "0.3"
    assert argv.count("--seed") == 1 and argv[argv.index("--seed") + 1] == "9"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--balance"] == ["max-ratio=3", "class-weights"]


def test_shard_comes_from_the_resource_config(opt_ml: Path, tmp_path: Path) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2", "algo-3"]}))
    argv = processing_argv([], {"DATAPREP_OUT": "s3://datasets/v1"}, root=opt_ml, resource_config=config)
    assert isinstance(argv, list)
    assert argv[argv.index("--shard-index") + 1] == "1" and argv[argv.index("--shard-count") + 1] == "3"


def test_several_hosts_with_a_local_output_are_refused(opt_ml: Path, tmp_path: Path) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    reason = processing_argv([], {}, root=opt_ml, resource_config=config)
    assert (
        isinstance(reason, str) and "must be an s3:// prefix" in reason and str(opt_ml / "output") in reason
    )


def test_missing_manifest_input_is_a_one_line_reason(tmp_path: Path) -> None:
    reason = processing_argv([], {}, root=tmp_path / "empty", resource_config=tmp_path / "none.json")
    assert isinstance(reason, str) and "expected exactly one manifest file" in reason


def test_processing_run_writes_the_dataset_to_the_output_path(opt_ml: Path, tmp_path: Path) -> None:
    argv = processing_argv(
        ["--quiet"], {"DATAPREP_MAX_REJECT_FRACTION": "0.1"}, root=opt_ml, resource_config=tmp_path / "x"
    )
    assert isinstance(argv, list) and main(argv) == 0
    assert validate_layout(opt_ml / "output").splits["train"] > 0


def test_labels_passed_by_the_job_need_no_manifest_input(tmp_path: Path) -> None:
    """scripts.dataprep_job passes --labels s3://...: the container reads it itself (no Processing input)."""
    labels = "s3://bucket-a/raw/cvat/annotations/instances_default.json"
    argv = processing_argv(
        ["--labels", labels], {}, root=tmp_path / "empty", resource_config=tmp_path / "none.json"
    )
    assert isinstance(argv, list) and "--manifest" not in argv
    assert argv[argv.index("--labels") + 1] == labels
