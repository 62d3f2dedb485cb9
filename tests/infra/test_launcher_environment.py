"""The launcher settings (app/launcher/settings.py) built from the Lambda environment that CDK synthesized, as a cold
start would: a variable renamed, dropped or added on one side of the seam fails here, not in the first deployed run.

CloudFormation intrinsics are resolved to the values a deployment would give them: a Ref or GetAtt becomes a name or
ARN of the right shape for its resource type, an ImportValue the producing stack's resolved output.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.contracts import launcher_environment
from app.launcher.settings import RegistrarSettings, RunnerSettings, load
from tests.infra.synthesized import SynthesizedApp
from tests.infra.test_training_stack import REGISTRAR, RUNNER, function

ACCOUNT, REGION = "123456789012", "eu-west-1"
STAGES = ("Dev", "Staging", "Prod")
ALL_NAMES = {value for name, value in vars(launcher_environment).items() if name.isupper()}


class Resolver:
    """Deploy-time values of the intrinsics in one stage's templates."""

    def __init__(self, synth: SynthesizedApp, stage: str) -> None:
        self.templates = {stack: synth.template_json(stage, stack) for stack in ("Data", "Training")}
        self.exports = {
            output["Export"]["Name"]: (stack, output["Value"])
            for stack, template in self.templates.items()
            for output in template.get("Outputs", {}).values()
            if "Export" in output
        }

    def value(self, stack: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        [(function_name, argument)] = value.items()
        if function_name == "Fn::Join":
            separator, parts = argument
            return str(separator).join(self.value(stack, part) for part in parts)
        if function_name == "Fn::ImportValue":
            producer, exported = self.exports[argument]
            return self.value(producer, exported)
        if function_name == "Ref":
            return self._ref(stack, argument)
        if function_name == "Fn::GetAtt" and argument[1] == "Arn":
            return self._arn(stack, argument[0])
        if function_name == "Fn::GetAtt" and argument[1] == "ModelPackageGroupArn":
            return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{argument[0].lower()}"
        raise AssertionError(f"{stack}: no deploy-time value for {value} in this test; add one")

    def _type(self, stack: str, logical_id: str) -> str:
        return str(self.templates[stack]["Resources"][logical_id]["Type"])

    def _ref(self, stack: str, logical_id: str) -> str:
        kind = self._type(stack, logical_id)
        if kind == "AWS::SNS::Topic":  # Ref of a topic is its ARN
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical_id}"
        if kind == "AWS::S3::Bucket":
            return f"{stack}-{logical_id}".lower()[:63]
        raise AssertionError(
            f"{stack}: no deploy-time value for Ref {logical_id} ({kind}) in this test; add one"
        )

    def _arn(self, stack: str, logical_id: str) -> str:
        kind = self._type(stack, logical_id)
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{stack}-{logical_id}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        raise AssertionError(
            f"{stack}: no deploy-time value for the ARN of {logical_id} ({kind}) in this test"
        )


def _lambda_environment(synth: SynthesizedApp, stage: str, handler: str) -> dict[str, str]:
    resolver = Resolver(synth, stage)
    variables = function(resolver.templates["Training"], handler)[1]["Environment"]["Variables"]
    return {name: resolver.value("Training", value) for name, value in variables.items()}


def _aliases(settings: type[RunnerSettings] | type[RegistrarSettings]) -> set[str]:
    return {str(field.validation_alias) for field in settings.model_fields.values()}


def _cold_start(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("stage", STAGES)
def test_runner_settings_load_from_the_synthesized_lambda_environment(
    synth: SynthesizedApp, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = _lambda_environment(synth, stage, RUNNER)
    assert set(variables) == _aliases(
        RunnerSettings
    )  # nothing written that is not read, nor read that is unset
    _cold_start(monkeypatch, variables)
    settings = load(RunnerSettings)
    config = synth.stage(stage).config.training
    assert (settings.stage, settings.instance_type, settings.use_spot) == (
        stage,
        config.instance_type,
        config.use_spot,
    )
    assert settings.output_s3_uri == f"s3://{settings.artifacts_bucket}/training-output/"
    assert (settings.int8_map_drop_cap, settings.int8_class_drop_cap) == (
        config.int8_map_drop_cap,
        config.int8_class_drop_cap,
    )


@pytest.mark.parametrize("stage", STAGES)
def test_registrar_settings_load_from_the_synthesized_lambda_environment(
    synth: SynthesizedApp, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = _lambda_environment(synth, stage, REGISTRAR)
    assert set(variables) == _aliases(RegistrarSettings)
    _cold_start(monkeypatch, variables)
    settings = load(RegistrarSettings)
    assert settings.quality_bar_map50_95 == synth.stage(stage).config.training.quality_bar_map50_95
    assert settings.notify_topic_arn is not None and settings.notify_topic_arn.startswith("arn:aws:sns:")


def test_every_name_of_the_contract_is_read_by_a_launcher() -> None:
    assert _aliases(RunnerSettings) | _aliases(RegistrarSettings) == ALL_NAMES
