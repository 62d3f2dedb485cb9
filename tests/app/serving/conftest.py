"""Serving fixtures, built once per session: sample images, the trained artifact as a Detector, and a live server.

The live server is the container's ``serve`` executable started as a process on 127.0.0.1 with the artifact of the
session's real training run (``trained_artifact``); the helpers behind it are in server_process.py and samples.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.serving.model import Detector
from tests.app.serving.samples import generated_image, ultralytics_asset
from tests.app.serving.server_process import LiveServer, start_server, stop_server


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """Real photos (JPEG) from the ultralytics package plus a generated scene (PNG)."""
    return {
        "bus.jpg": ultralytics_asset("bus.jpg"),
        "zidane.jpg": ultralytics_asset("zidane.jpg"),
        "generated.png": generated_image(),
    }


@pytest.fixture(scope="session")
def detector(trained_artifact: Path) -> Detector:
    return Detector.load(trained_artifact, device="cpu", threads=2)


@pytest.fixture(scope="session")
def live_server(trained_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(trained_artifact, tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    stop_server(server)
