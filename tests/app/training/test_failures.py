"""Bad input makes the entrypoint exit non-zero with a clear reason in <opt_ml>/output/failure.

Each fails before torch is imported, except the unloadable checkpoint (it gets as far as torch).
"""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.artifacts import FAST_HYPERPARAMETERS, make_opt_ml, run_training


def _failed(opt_ml: Path) -> str:
    run = run_training(opt_ml, timeout=60)
    assert run.returncode == 1, run.output[-2000:]
    assert run.failure is not None, "no failure file written"
    assert not (opt_ml / "model" / "model.json").exists()
    return run.failure


def test_unknown_hyperparameter_is_named_in_failure(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(
        tmp_path, dataset=tiny_dataset, hyperparameters={**FAST_HYPERPARAMETERS, "epochz": "3"}
    )
    assert "unknown hyperparameter(s) ['epochz']" in _failed(opt_ml)


def test_invalid_hyperparameter_value_is_named_in_failure(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(
        tmp_path, dataset=tiny_dataset, hyperparameters={**FAST_HYPERPARAMETERS, "imgsz": "abc"}
    )
    reason = _failed(opt_ml)
    assert reason.startswith(
        f"{opt_ml / 'input' / 'config' / 'hyperparameters.json'}: hyperparameter 'imgsz'='abc'"
    )


def test_missing_dataset_channel_fails_naming_the_channel(tmp_path: Path) -> None:
    opt_ml = make_opt_ml(tmp_path, dataset=None)
    assert "no 'dataset' channel" in _failed(opt_ml)


def test_missing_dataset_folder_fails_even_without_inputdataconfig(tmp_path: Path) -> None:
    opt_ml = make_opt_ml(tmp_path, dataset=None)
    (opt_ml / "input" / "config" / "inputdataconfig.json").unlink()
    assert "missing 'dataset' channel" in _failed(opt_ml)


def test_corrupt_label_line_fails_naming_file_and_line(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(tmp_path, dataset=tiny_dataset)
    label = opt_ml / "input" / "data" / "dataset" / "labels" / "train" / "train_0003.txt"
    label.write_text(label.read_text() + "7 0.5 0.5 0.2 0.2\n")
    reason = _failed(opt_ml)
    lineno = len(label.read_text().splitlines())
    assert reason.startswith(f"{label}:{lineno}: class id 7 out of range; dataset.json has 3 classes")


def test_unreadable_dataset_json_fails_naming_the_file(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(tmp_path, dataset=tiny_dataset)
    info = opt_ml / "input" / "data" / "dataset" / "dataset.json"
    info.write_text(info.read_text()[:40])
    assert _failed(opt_ml).startswith(f"{info}: line")


def test_missing_baked_weights_fail_without_downloading(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(
        tmp_path, dataset=tiny_dataset, hyperparameters={**FAST_HYPERPARAMETERS, "model": "yolo11n.pt"}
    )
    reason = _failed(opt_ml)
    assert "hyperparameter 'model'='yolo11n.pt': no such checkpoint" in reason
    assert len(reason.splitlines()[0]) <= 1024


def test_stale_failure_file_is_replaced_by_this_attempts_reason(tmp_path: Path, tiny_dataset: Path) -> None:
    opt_ml = make_opt_ml(tmp_path, dataset=tiny_dataset, hyperparameters={"epochs": "0"})
    (opt_ml / "output").mkdir()
    (opt_ml / "output" / "failure").write_text("REASON-FROM-AN-EARLIER-ATTEMPT")
    reason = _failed(opt_ml)
    assert "REASON-FROM-AN-EARLIER-ATTEMPT" not in reason
    assert "hyperparameter 'epochs'='0'" in reason


def test_unloadable_pretrained_checkpoint_fails_naming_the_file(tmp_path: Path, tiny_dataset: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    opt_ml = make_opt_ml(tmp_path / "opt_ml", dataset=tiny_dataset, pretrained=broken)
    reason = _failed(opt_ml)
    assert reason.startswith(f"{opt_ml / 'input' / 'data' / 'pretrained' / 'broken.pt'}: not a loadable")
