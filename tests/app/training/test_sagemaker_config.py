"""The /opt/ml input contract: config files and channels read into TrainingConfig, or a ContractError naming them.

Also the small pure rules around the config: the hyperparameter table, AutoBatch on several GPUs, the model version
and the training record in model.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contracts.errors import ContractError
from app.training.artifact import model_version
from app.training.environment import OPT_ML_ENV, TrainingEnvironment
from app.training.run import TrainingRecord, check_batch
from app.training.sagemaker import OptMl, read_config, resolve_opt_ml
from tests.fixtures.artifacts import make_opt_ml, pretrained_checkpoint


def test_flag_beats_env_beats_default(tmp_path: Path) -> None:
    environment = TrainingEnvironment.read({OPT_ML_ENV: str(tmp_path / "env")})
    assert resolve_opt_ml(str(tmp_path / "flag"), environment).root == tmp_path / "flag"
    assert resolve_opt_ml(None, environment).root == tmp_path / "env"
    assert resolve_opt_ml(None, TrainingEnvironment.read({})).root == Path("/opt/ml")


def test_full_tree_reads_typed_config(tmp_path: Path, tiny_dataset: Path) -> None:
    opt = OptMl(make_opt_ml(tmp_path, dataset=tiny_dataset, pretrained=pretrained_checkpoint()))
    config = read_config(opt)
    assert config.hyperparameters.epochs == 2
    assert config.dataset_dir == opt.channel("dataset")
    assert config.pretrained_dir == opt.channel("pretrained")
    assert config.current_host == "algo-1"
    assert config.instance_type is None  # make_opt_ml's resourceconfig.json names no instance type


def test_sagemaker_reserved_hyperparameters_are_set_aside(tmp_path: Path, tiny_dataset: Path) -> None:
    opt = OptMl(
        make_opt_ml(tmp_path, dataset=tiny_dataset, hyperparameters={"sagemaker_region": '"us-east-1"'})
    )
    assert read_config(opt).ignored_hyperparameters == ("sagemaker_region",)


def test_several_hosts_are_rejected(tmp_path: Path, tiny_dataset: Path) -> None:
    opt = OptMl(make_opt_ml(tmp_path, dataset=tiny_dataset))
    (opt.config_dir / "resourceconfig.json").write_text(
        json.dumps({"current_host": "a", "hosts": ["a", "b"]})
    )
    with pytest.raises(ContractError, match=r"resourceconfig\.json: 2 hosts"):
        read_config(opt)


def test_pipe_mode_channel_is_rejected(tmp_path: Path, tiny_dataset: Path) -> None:
    opt = OptMl(make_opt_ml(tmp_path, dataset=tiny_dataset))
    (opt.config_dir / "inputdataconfig.json").write_text(
        json.dumps({"dataset": {"TrainingInputMode": "Pipe"}})
    )
    with pytest.raises(ContractError, match="channel 'dataset' uses TrainingInputMode Pipe"):
        read_config(opt)


def test_unknown_channel_is_rejected(tmp_path: Path, tiny_dataset: Path) -> None:
    opt = OptMl(make_opt_ml(tmp_path, dataset=tiny_dataset))
    (opt.config_dir / "inputdataconfig.json").write_text(json.dumps({"dataset": {}, "validation": {}}))
    with pytest.raises(ContractError, match=r"unknown channel\(s\) \['validation'\]"):
        read_config(opt)


def test_malformed_hyperparameters_json_names_file_and_line(tmp_path: Path, tiny_dataset: Path) -> None:
    opt = OptMl(make_opt_ml(tmp_path, dataset=tiny_dataset))
    (opt.config_dir / "hyperparameters.json").write_text('{"epochs": "2",\n')
    with pytest.raises(ContractError, match=r"hyperparameters.json: line 2: not valid JSON"):
        read_config(opt)


def test_hyperparameter_table_documents_every_field() -> None:
    from app.contracts.hyperparameters import Hyperparameters
    from app.training.__main__ import hyperparameter_table

    names = [line.split()[0] for line in hyperparameter_table().splitlines()[1:]]
    assert names == list(Hyperparameters.model_fields)


def test_autobatch_on_several_resolved_gpus_is_refused_before_training() -> None:
    """device '' means every GPU of the instance: only known in the container, checked before the trainer starts."""
    with pytest.raises(ContractError, match=r"'batch'=-1 \(AutoBatch\) on 4 GPUs"):
        check_batch(-1, "0,1,2,3")
    check_batch(-1, "0")
    check_batch(-1, "cpu")
    check_batch(16, "0,1")


def test_model_version_is_the_job_name_or_a_local_timestamp() -> None:
    assert model_version("dev-yolo-abc") == "dev-yolo-abc"
    assert model_version(None).startswith("local-")


def test_training_record_leaves_out_what_the_job_never_reached() -> None:
    packaged = TrainingRecord(
        hyperparameters={}, device="cpu", host="algo-1", epochs_run=2, weights="best.pt"
    )
    assert list(packaged.as_dict()) == [
        "hyperparameters",
        "device",
        "host",
        "start",
        "epochs_run",
        "weights",
        "shipped_epoch",
    ]
    trained = TrainingRecord(
        hyperparameters={}, device="cpu", host="algo-1", train_seconds=1.0, train_cpu_seconds=1.0
    )
    assert trained.as_dict()["stopped_by"] is None  # a loop ran: None says every epoch ran
