"""Where training starts from: pretrained channel (.pt or a previous job's model.tar.gz), baked weights, or a yaml."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from app.training.weights import WEIGHTS_DIR_ENV, WeightsError, resolve_start


def test_pretrained_channel_wins_over_the_model_hyperparameter(tmp_path: Path) -> None:
    channel = tmp_path / "pretrained"
    channel.mkdir()
    (channel / "best.pt").write_bytes(b"x")
    assert resolve_start("yolov8n.yaml", channel, tmp_path / "work") == channel / "best.pt"


def test_previous_jobs_model_tar_gz_is_unpacked(tmp_path: Path) -> None:
    channel = tmp_path / "pretrained"
    channel.mkdir()
    (tmp_path / "model.pt").write_bytes(b"weights")
    with tarfile.open(channel / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "model.pt", arcname="model.pt")
    start = resolve_start("yolov8n.yaml", channel, tmp_path / "work")
    assert isinstance(start, Path) and start.read_bytes() == b"weights"


def test_several_checkpoints_in_the_channel_are_ambiguous(tmp_path: Path) -> None:
    channel = tmp_path / "pretrained"
    channel.mkdir()
    for name in ("a.pt", "b.pt"):
        (channel / name).write_bytes(b"x")
    with pytest.raises(WeightsError, match="has 2 checkpoints"):
        resolve_start("yolov8n.yaml", channel, tmp_path)


def test_model_name_resolves_to_baked_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    (tmp_path / "yolov8n.pt").write_bytes(b"x")
    assert resolve_start("yolov8n.pt", None, tmp_path / "work") == tmp_path / "yolov8n.pt"


def test_model_yaml_is_built_from_scratch(tmp_path: Path) -> None:
    assert resolve_start("yolov8s.yaml", None, tmp_path) == "yolov8s.yaml"


def test_unknown_model_name_lists_what_is_baked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    (tmp_path / "yolov8n.pt").write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"baked in: \['yolov8n.pt'\]"):
        resolve_start("yolo11n.pt", None, tmp_path / "work")
