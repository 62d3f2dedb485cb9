"""The GPU path at synth: every GPU variant gets an InferenceAmiVersion whose driver fits the serve image and runs
with SERVING_DEVICE=cuda; GPU images are built on the CUDA the contract declares; a too-new image, an unknown AMI,
a Graviton instance or a promotion order in which Prod's serving host never ran before fails with the reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import infra.app
from app.contracts import cuda, instance_types
from infra.config import ConfigError, check_promotion_order, load_stage
from infra.constructs.endpoint import serving_environment
from infra.stages import STAGES
from scripts import synth as synth_script
from tests.infra.synthesized import SynthesizedApp, make_stage_config


def _values(name: str, **endpoint: Any) -> dict[str, Any]:
    values = copy.deepcopy(dict(STAGES[name]))
    values["endpoint"] = {**values["endpoint"], **endpoint}
    return values


def _of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template.get("Resources", {}).values() if r["Type"] == kind]


@pytest.mark.parametrize("stage", list(STAGES))
def test_gpu_variants_get_an_allowed_ami_and_insist_on_cuda(synth: SynthesizedApp, stage: str) -> None:
    template = synth.template_json(stage, "Serving")
    (config,) = _of_type(template, "AWS::SageMaker::EndpointConfig")
    (model,) = _of_type(template, "AWS::SageMaker::Model")
    env = model["Properties"]["PrimaryContainer"].get("Environment", {})
    for variant in config["Properties"]["ProductionVariants"]:
        row = instance_types.gpu_family(variant["InstanceType"])
        if row is None:
            assert "InferenceAmiVersion" not in variant and env.get("SERVING_DEVICE") != "cuda"
            continue
        ami = variant["InferenceAmiVersion"]
        assert ami in row.inference_amis
        assert instance_types.INFERENCE_AMIS[ami].cuda >= cuda.image_cuda("serve")
        assert env["SERVING_DEVICE"] == "cuda"


def test_shipped_stages_serve_prod_on_gpu_after_a_gpu_stage(synth: SynthesizedApp) -> None:
    """The default config passes the parity check because Staging serves on Prod's family and AMI."""
    hosts = {}
    for stage in STAGES:
        (config,) = _of_type(synth.template_json(stage, "Serving"), "AWS::SageMaker::EndpointConfig")
        (variant,) = config["Properties"]["ProductionVariants"]
        hosts[stage] = (instance_types.family(variant["InstanceType"]), variant.get("InferenceAmiVersion"))
    assert hosts["Staging"] == hosts["Prod"] and hosts["Prod"][1] is not None


def _docker_assets(synth: SynthesizedApp, stage: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((synth.outdir / f"assembly-{stage}").glob("*.assets.json")):
        found += [a["source"] for a in json.loads(path.read_text()).get("dockerImages", {}).values()]
    return found


@pytest.mark.parametrize("stage", list(STAGES))
def test_gpu_images_are_built_on_the_declared_cuda(synth: SynthesizedApp, stage: str) -> None:
    gpu_serving = instance_types.is_gpu(load_stage(stage, STAGES[stage]).endpoint.instance_type)
    for source in _docker_assets(synth, stage):
        args = source.get("dockerBuildArgs") or {}
        if source["dockerFile"] == "containers/train/Dockerfile":
            assert args == {"CUDA_VERSION": cuda.IMAGE_CUDA["train"]}
        elif source["dockerFile"] == "containers/serve/Dockerfile" and gpu_serving:
            assert args == {"VARIANT": "gpu", "CUDA_VERSION": cuda.IMAGE_CUDA["serve"]}


def test_too_new_cuda_for_the_ami_names_stage_family_ami_and_versions() -> None:
    values = _values(
        "Prod", inference_ami_version="al2-ami-sagemaker-inference-gpu-2"
    )  # driver 535 / CUDA 12.2
    with pytest.raises(ConfigError) as exc:
        load_stage("Prod", values)
    message = str(exc.value)
    for part in ("stage Prod", "family g5", "al2-ami-sagemaker-inference-gpu-2", "CUDA 12.2", "CUDA 12.4"):
        assert part in message, message


def test_unknown_ami_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"stage Prod: field 'endpoint'.*unknown InferenceAmiVersion 'gpu-latest'"
    ):
        load_stage("Prod", _values("Prod", inference_ami_version="gpu-latest"))


def test_ami_on_a_cpu_endpoint_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"stage Dev: field 'endpoint'.*no NVIDIA GPU"):
        load_stage("Dev", _values("Dev", inference_ami_version="al2-ami-sagemaker-inference-gpu-3-1"))


def test_gpu_endpoint_may_not_opt_out_of_cuda() -> None:
    with pytest.raises(
        ConfigError, match=r"stage Prod: field 'endpoint'.*SERVING_DEVICE=auto on GPU instance"
    ):
        load_stage("Prod", _values("Prod", environment={"SERVING_DEVICE": "auto"}))


@pytest.mark.parametrize("field", ["endpoint", "training"])
def test_graviton_instance_is_refused_at_synth(field: str) -> None:
    values = copy.deepcopy(dict(STAGES["Dev"]))
    values[field] = {**values[field], "instance_type": "ml.c7g.xlarge"}
    with pytest.raises(
        ConfigError, match=rf"stage Dev: field '{field}.instance_type'.*Graviton.*linux/amd64"
    ):
        load_stage("Dev", values)


def test_promotion_order_where_prod_serves_on_a_host_no_earlier_stage_ran_is_refused() -> None:
    staging_on_cpu = _values(
        "Staging",
        instance_type="ml.c6i.xlarge",
        autoscaling={"min_capacity": 1, "max_capacity": 2, "invocations_per_instance_target": 600},
    )
    configs = {
        "Dev": load_stage("Dev", STAGES["Dev"]),
        "Staging": load_stage("Staging", staging_on_cpu),
        "Prod": load_stage("Prod", STAGES["Prod"]),
    }
    with pytest.raises(ConfigError) as exc:
        check_promotion_order(configs)
    message = str(exc.value)
    assert "Dev -> Staging -> Prod" in message and "family g5" in message
    assert "Dev: c6i/no AMI" in message and "Staging: c6i/no AMI" in message


def test_promotion_order_compares_the_ami_too() -> None:
    configs = {
        "Staging": load_stage(
            "Staging", _values("Staging", inference_ami_version="al2-ami-sagemaker-inference-gpu-3-1")
        ),
        "Prod": load_stage("Prod", STAGES["Prod"]),
    }
    check_promotion_order(configs)  # same family, same (default) AMI: fine


@pytest.mark.parametrize(
    ("stage", "endpoint", "expected"),
    [
        ("Prod", {"inference_ami_version": "al2-ami-sagemaker-inference-gpu-2"}, "needs CUDA 12.4"),
        (
            "Staging",
            {
                "instance_type": "ml.c6i.xlarge",
                "autoscaling": {"min_capacity": 1, "max_capacity": 2, "invocations_per_instance_target": 600},
            },
            "which no earlier stage serves on",
        ),
    ],
)
def test_make_synth_fails_with_the_reason_instead_of_a_traceback(
    stage: str,
    endpoint: dict[str, Any],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(infra.app, "STAGES", {**STAGES, stage: _values(stage, **endpoint)})
    assert synth_script.main(["--outdir", str(tmp_path / "cdk.out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err


def test_synth_summary_shows_the_ami_of_each_gpu_variant(synth: SynthesizedApp) -> None:
    lines = synth_script.variant_lines(synth.template_json("Prod", "Serving")["Resources"])
    assert lines == [
        "g5-xlarge: 2 x ml.g5.xlarge, InferenceAmiVersion al2-ami-sagemaker-inference-gpu-3-1 "
        "(NVIDIA driver 550 / CUDA 12.4)"
    ]
    assert synth_script.variant_lines(synth.template_json("Dev", "Serving")["Resources"]) == [
        "c6i-large: 1 x ml.c6i.large"
    ]


def test_canary_routing_still_shifts_a_canary_first() -> None:
    """No shipped stage uses a canary since Staging serves on one GPU instance; the strategy still works."""
    from infra.config import DeploymentSettings
    from infra.constructs.endpoint import traffic_routing

    routing = traffic_routing(DeploymentSettings(strategy="canary", wait_interval_s=120))
    assert (
        routing.type == "CANARY"
        and routing.canary_size is not None
        and routing.wait_interval_in_seconds == 120
    )


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_serves_the_precision_its_config_names(synth: SynthesizedApp, stage: str) -> None:
    (model,) = _of_type(synth.template_json(stage, "Serving"), "AWS::SageMaker::Model")
    env = model["Properties"]["PrimaryContainer"]["Environment"]
    assert env["SERVING_PRECISION"] == make_stage_config(stage).endpoint.precision


def test_an_int8_stage_gets_serving_precision_int8_from_infra() -> None:
    settings = make_stage_config("Dev", endpoint={"precision": "int8"}).endpoint
    assert serving_environment(settings)["SERVING_PRECISION"] == "int8"


def test_serving_precision_set_by_hand_is_refused_naming_the_field() -> None:
    with pytest.raises(
        ConfigError, match=r"stage Dev: field 'endpoint'.*SERVING_PRECISION=int8: set endpoint.precision"
    ):
        make_stage_config("Dev", endpoint={"environment": {"SERVING_PRECISION": "int8"}})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "SERVING_WORKRS",
            r"SERVING_WORKRS: not a serving setting \(did you mean SERVING_WORKERS\?\); a stage may set",
        ),
        ("SERVING_PORT", r"SERVING_PORT: fixed by SageMaker's hosting contract"),
    ],
)
def test_an_unknown_or_fixed_serving_variable_is_refused_at_synth(name: str, expected: str) -> None:
    """The server ignores SERVING_* names it does not know: a typo would deploy without the setting."""
    with pytest.raises(ConfigError, match=rf"stage Dev: field 'endpoint'.*{expected}"):
        make_stage_config("Dev", endpoint={"environment": {name: "4"}})


def test_other_container_variables_and_tunable_settings_pass() -> None:
    config = make_stage_config(
        "Dev", endpoint={"environment": {"SERVING_WORKERS": "2", "OMP_WAIT_POLICY": "PASSIVE"}}
    )
    assert serving_environment(config.endpoint)["SERVING_WORKERS"] == "2"
