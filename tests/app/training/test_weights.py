"""Where training starts from: pretrained channel (.pt or a previous job's model.tar.gz), baked weights, or a yaml."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from app.training.environment import DEFAULT_WEIGHTS_DIR
from app.training.weights import (
    WeightsError,
    check_yaml,
    resolve_start,
    start_record,
    transfer_report,
)


def test_pretrained_channel_wins_over_the_model_hyperparameter(tmp_path: Path) -> None:
    channel = tmp_path / "pretrained"
    channel.mkdir()
    (channel / "best.pt").write_bytes(b"x")
    assert (
        resolve_start("yolov8n.yaml", channel, tmp_path / "work", weights_dir=DEFAULT_WEIGHTS_DIR)
        == channel / "best.pt"
    )


def test_previous_jobs_model_tar_gz_is_unpacked(tmp_path: Path) -> None:
    channel = tmp_path / "pretrained"
    channel.mkdir()
    (tmp_path / "model.pt").write_bytes(b"weights")
    with tarfile.open(channel / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "model.pt", arcname="model.pt")
    start = resolve_start("yolov8n.yaml", channel, tmp_path / "work", weights_dir=DEFAULT_WEIGHTS_DIR)
    assert isinstance(start, Path) and start.read_bytes() == b"weights"


def test_several_checkpoints_in_the_channel_are_ambiguous(tmp_path: Path) -> None:
    channel = tmp_path / "pretrained"
    channel.mkdir()
    for name in ("a.pt", "b.pt"):
        (channel / name).write_bytes(b"x")
    with pytest.raises(WeightsError, match="has 2 checkpoints"):
        resolve_start("yolov8n.yaml", channel, tmp_path, weights_dir=DEFAULT_WEIGHTS_DIR)


def test_model_name_resolves_to_baked_weights(tmp_path: Path) -> None:
    (tmp_path / "yolov8n.pt").write_bytes(b"x")
    assert (
        resolve_start("yolov8n.pt", None, tmp_path / "work", weights_dir=tmp_path) == tmp_path / "yolov8n.pt"
    )


def test_model_yaml_is_built_from_scratch(tmp_path: Path) -> None:
    assert resolve_start("yolov8s.yaml", None, tmp_path, weights_dir=DEFAULT_WEIGHTS_DIR) == "yolov8s.yaml"


def test_unknown_model_name_lists_what_is_baked(tmp_path: Path) -> None:
    (tmp_path / "yolov8n.pt").write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"baked in: \['yolov8n.pt'\]"):
        resolve_start("yolo11n.pt", None, tmp_path / "work", weights_dir=tmp_path)


def _checkpoint(tmp_path: Path, cfg: str) -> Path:
    """A checkpoint of architecture ``cfg`` (random weights), saved the way ultralytics saves one."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    path = tmp_path / cfg.replace(".yaml", ".pt")
    torch.save({"model": DetectionModel(cfg, nc=2, verbose=False), "train_args": {}}, path)
    return path


@pytest.mark.parametrize(("cfg", "family"), [("yolo26n.yaml", "YOLO26"), ("yolov10n.yaml", "YOLOv10")])
def test_end_to_end_checkpoint_is_refused_before_training_naming_the_family(
    tmp_path: Path, cfg: str, family: str
) -> None:
    checkpoint = _checkpoint(tmp_path, cfg)
    renamed = checkpoint.rename(tmp_path / "model.pt")  # a previous job's model.pt: the name says nothing
    with pytest.raises(WeightsError, match=rf"model.pt \(the starting checkpoint\) is a {family} model"):
        transfer_report(renamed, nc=3)


def test_raw_layout_checkpoint_is_accepted(tmp_path: Path) -> None:
    assert transfer_report(_checkpoint(tmp_path, "yolov8n.yaml"), nc=3).transferred > 0


@pytest.mark.parametrize(
    ("cfg", "family"),
    [("yolo26n.yaml", "YOLO26"), ("yolov10s.yaml", "YOLOv10"), ("rtdetr-l.yaml", "RT-DETR")],
)
def test_end_to_end_yaml_is_refused(cfg: str, family: str) -> None:
    with pytest.raises(WeightsError, match=rf"is a {family} model"):
        check_yaml(cfg)


def test_start_record_has_the_checkpoint_name_and_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights")
    record = start_record(path, from_channel=True, weights_dir=DEFAULT_WEIGHTS_DIR)
    assert record == {
        "name": "model.pt",
        "sha256": hashlib.sha256(b"weights").hexdigest(),
        "source": "pretrained channel",
    }
    assert start_record("yolov8s.yaml", from_channel=False, weights_dir=DEFAULT_WEIGHTS_DIR)["sha256"] is None


def test_bundled_demo_checkpoint_is_a_yolov8s_and_the_demo_says_so() -> None:
    from ultralytics.nn.tasks import load_checkpoint

    from scripts import demo
    from tests.fixtures.artifacts import pretrained_checkpoint

    model, _ = load_checkpoint(pretrained_checkpoint())
    # yolov8s.yaml's scale "s"
    assert (model.yaml["width_multiple"], model.yaml["depth_multiple"]) == (0.5, 0.33)
    assert "YOLOv8s" in demo.PRETRAINED_WHAT
