"""The data prep image: pinned requirements without torch or the CDK, allow-listed context, entrypoint runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from app.contracts.dataset import validate_layout
from infra.paths import REPO_ROOT
from tests.fixtures.containers import requirement_pins, unadmitted_copy_sources

FOLDER = REPO_ROOT / "containers" / "dataprep"


def requirements() -> dict[str, str]:
    lines = [ln.strip() for ln in (FOLDER / "requirements.txt").read_text().splitlines()]
    listed = [ln for ln in lines if ln and not ln.startswith("#")]
    pins = requirement_pins(listed)
    assert len(pins) == len(listed), f"every requirement must be pinned with ==: {listed}"
    return pins


def test_requirements_leave_out_torch_and_the_cdk() -> None:
    """Versions come from requirements.lock (tests/test_lock.py); the image carries only what data prep imports."""
    pinned = requirements()
    assert not {"torch", "ultralytics", "aws-cdk-lib", "onnxruntime"} & set(pinned)


def test_every_copied_path_is_in_the_allow_list() -> None:
    assert unadmitted_copy_sources(FOLDER) == []


def test_entrypoint_runs_as_a_process_against_a_fake_opt_ml(
    realistic: tuple[Path, Path], tmp_path: Path
) -> None:
    entry = re.search(
        r'^ENTRYPOINT \["python", "-m", "([\w.]+)"\]', (FOLDER / "Dockerfile").read_text(), re.M
    )
    assert entry
    manifest, images = realistic
    root = tmp_path / "processing"
    (root / "input" / "manifest").mkdir(parents=True)
    shutil.copy(manifest, root / "input" / "manifest")
    shutil.copytree(images, root / "input" / "images")
    env = {**os.environ, "DATAPREP_PROCESSING_ROOT": str(root), "DATAPREP_MAX_REJECT_FRACTION": "0.1",
           "DATAPREP_RESOURCE_CONFIG": str(tmp_path / "absent.json")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", entry.group(1), "--quiet"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert validate_layout(root / "output").label_attribute == "tools-2024-bbox"
