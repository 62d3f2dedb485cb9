"""``python -m app.training --opt-ml <typo>`` refuses the missing folder instead of growing a new /opt/ml tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.training.__main__ import main
from app.training.environment import TrainingEnvironment
from infra.paths import REPO_ROOT


def test_a_missing_opt_ml_is_refused_and_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "opt_ml_tpyo"
    done = subprocess.run(
        [sys.executable, "-m", "app.training", "--opt-ml", str(typo)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"train: {typo}: no such directory; expected the /opt/ml tree (--opt-ml)"
    assert not typo.exists()


def test_entrypoint_refuses_a_missing_opt_ml_before_reading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = TrainingEnvironment(opt_ml=tmp_path / "typo")
    assert main([], environment) == 2
    assert f"{tmp_path / 'typo'}: no such directory" in capsys.readouterr().err
