"""containers/train: the image's CUDA follows the contract, the allow-list admits every COPY source, hadolint passes,
and the image's entrypoint runs our module with `train` (no Docker needed). Its versions come from requirements.lock
(tests/test_lock.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from infra.paths import REPO_ROOT
from tests.fixtures.containers import requirement_pins, unadmitted_copy_sources

TRAIN = REPO_ROOT / "containers" / "train"


def test_image_cuda_is_the_one_declared_in_the_contract() -> None:
    """Dockerfile default, torch build and CUDA libraries all follow app/contracts/cuda.py (IMAGE_CUDA["train"])."""
    from app.contracts.cuda import IMAGE_CUDA, image_cuda

    declared, cuda = IMAGE_CUDA["train"], image_cuda("train")
    assert re.search(rf"^ARG CUDA_VERSION={re.escape(declared)}$", (TRAIN / "Dockerfile").read_text(), re.M)
    lock = requirement_pins((TRAIN / "requirements.txt").read_text().splitlines())
    assert lock["torch"].endswith(f"+cu{cuda.major}{cuda.minor}")
    assert lock["torchvision"].endswith(f"+cu{cuda.major}{cuda.minor}")
    nvidia = {k for k in lock if k.startswith("nvidia-") and k != "nvidia-ml-py"}
    assert nvidia and all(k.endswith(f"-cu{cuda.major}") for k in nvidia), sorted(nvidia)


def test_dockerignore_admits_every_copy_source() -> None:
    assert unadmitted_copy_sources(TRAIN) == []


def test_entrypoint_is_exec_form_and_runs_train() -> None:
    text = (TRAIN / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "app.training"]' in text
    assert 'CMD ["train"]' in text
    assert "YOLO_OFFLINE=1" in text and "YOLO_AUTOINSTALL=false" in text


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not installed; run `make setup`")
    result = subprocess.run(
        [hadolint, str(TRAIN / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_accepts_the_train_argument_sagemaker_passes() -> None:
    from app.training.__main__ import parse_args

    assert parse_args(["train", "--opt-ml", "/x"]).opt_ml == "/x"
    with pytest.raises(SystemExit):
        parse_args(["serve"])
    assert parse_args([]).mode == "train"


def test_baked_checkpoint_is_the_one_the_contract_names() -> None:
    """The default start (app.contracts) is the file the Dockerfile bakes into /opt/ml-weights."""
    from app.contracts.hyperparameters import BAKED_CHECKPOINT

    url = re.search(r"^ARG PRETRAINED_URL=(\S+)$", (TRAIN / "Dockerfile").read_text(), re.M)
    assert url is not None and url[1].rsplit("/", 1)[-1] == BAKED_CHECKPOINT
