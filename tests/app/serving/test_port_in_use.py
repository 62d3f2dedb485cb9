"""A port in use is one plain line before the model is loaded (it used to be JSON log lines after loading)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.serving.__main__ import main


def test_port_in_use_is_one_line_before_the_model_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # an empty model folder: had the model been loaded first, the artifact error would come instead
        code = main(["--model-dir", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"serve: port {port} on 127.0.0.1 is in use (another server?): stop it or pass --port\n"
