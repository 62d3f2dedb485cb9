"""An optional step never costs the model: whatever happens to the int8 step - an exception, or the process killed
as the OOM killer kills it - the job ships its fp32 artifact and records int8 as failed, with the reason."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from app.contracts.artifact import INT8_ONNX, MODEL_ONNX, read_model_card
from app.contracts.dataset import IMAGES_DIR, TRAIN
from app.training.dataset_check import check_dataset, write_training_yaml
from app.training.int8_step import Int8Request, run_int8
from infra.paths import REPO_ROOT
from tests.fixtures.artifacts import (
    FAST_HYPERPARAMETERS,
    checked_final_line,
    make_opt_ml,
    terminate_training,
    training_command,
    training_env,
)

CHILD = re.compile(r"^\[int8\] quantizing and evaluating in child process (\d+)")


def test_an_exception_in_the_int8_step_is_a_failed_int8_not_a_failed_job(
    trained_artifact: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copyfile(trained_artifact / MODEL_ONNX, model_dir / MODEL_ONNX)
    calibration = tmp_path / "calibration"
    shutil.copytree(tiny_dataset / IMAGES_DIR / TRAIN, calibration)
    first = min(calibration.iterdir())
    first.write_bytes(
        b"not a jpeg"
    )  # ORT calls the reader inside its calibration loop: the error surfaces there
    card = read_model_card(trained_artifact)
    request = Int8Request(
        model_dir=str(model_dir),
        fp32_name=MODEL_ONNX,
        input_name=card.export.input_name,
        imgsz=card.imgsz,
        data_yaml=str(write_training_yaml(tiny_dataset, check_dataset(tiny_dataset), tmp_path / "data.yaml")),
        class_names=card.class_names,
        calibration_folder=str(calibration),
        calibration_limit=16,
        max_drop=0.2,
        max_class_drop=0.3,
        min_val_images=8,
    )
    result = run_int8(request)
    assert result.status == "failed" and not result.shipped and result.file is None
    assert f"{first}: not a readable image (calibration)" in result.reason, result.reason
    assert result.reason.endswith("serving uses fp32")
    assert not (model_dir / INT8_ONNX).exists()
    assert (model_dir / MODEL_ONNX).is_file()


def test_an_int8_step_killed_for_memory_still_ships_the_fp32_model(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    """The real entrypoint; the int8 child is SIGKILLed as the kernel's OOM killer does: exit 0, fp32 shipped."""
    hyperparameters = {**FAST_HYPERPARAMETERS, "model": "yolov8n.yaml", "epochs": "1", "imgsz": "64"}
    opt_ml = make_opt_ml(tmp_path / "opt_ml", dataset=tiny_dataset, hyperparameters=hyperparameters)
    proc = subprocess.Popen(
        training_command(opt_ml), cwd=REPO_ROOT, env=training_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    killed = None
    try:
        for line in proc.stdout:
            seen.append(line)
            match = CHILD.match(line)
            if match and killed is None:
                killed = int(match.group(1))
                os.kill(killed, signal.SIGKILL)
        returncode = proc.wait(timeout=120)
    finally:
        proc.kill()
    output = "".join(seen)
    assert killed is not None, f"the job never started an isolated int8 step:\n{output[-3000:]}"
    assert returncode == 0, f"exit {returncode}:\n{output[-3000:]}"
    model_dir = opt_ml / "model"
    card = read_model_card(model_dir)
    assert card.int8 is not None and card.int8.status == "failed" and not card.int8.shipped
    assert "killed by SIGKILL" in card.int8.reason and "OOM killer" in card.int8.reason
    assert card.precisions() == ["fp32"] and (model_dir / MODEL_ONNX).is_file()
    assert not (model_dir / INT8_ONNX).exists()
    checked_final_line(output, model_dir)  # the registrar still gets the shipped model's metrics


def test_sigterm_during_the_int8_step_stops_the_job_and_its_child(tmp_path: Path, tiny_dataset: Path) -> None:
    """StopTrainingJob / a spot interruption while int8 runs: exit 143 within seconds, no int8 process left."""
    hyperparameters = {**FAST_HYPERPARAMETERS, "model": "yolov8n.yaml", "epochs": "1", "imgsz": "64"}
    opt_ml = make_opt_ml(tmp_path / "opt_ml", dataset=tiny_dataset, hyperparameters=hyperparameters)
    run = terminate_training(opt_ml, marker="[int8] quantizing", delay_s=1.0)
    assert run.returncode == 143, run.output[-3000:]
    assert run.stop_seconds < 15 and "[sigterm]" in run.output
    (line,) = [line for line in run.output.splitlines() if CHILD.match(line)]
    child = int(CHILD.match(line).group(1))  # type: ignore[union-attr]
    assert not Path(f"/proc/{child}").exists(), "the int8 process outlived the job"
