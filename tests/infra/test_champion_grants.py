"""The champion's grants in the synthesized Training stack: the runner finds the stage's champion (ListModelPackages,
DescribeModelPackage on the group's versions), the registrar reads jobs' model.tar.gz and writes their evaluation/
report with the data key, and both launchers get the stage's tolerances in their environment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import StageConfig
from tests.infra.synthesized import SynthesizedApp
from tests.infra.test_training_stack import (
    CONFIGS,
    REGISTRAR,
    RUNNER,
    function,
    function_role,
    object_suffixes,
    role_statements,
    statements_with,
)


@pytest.fixture(scope="module")
def dev(synth: SynthesizedApp) -> dict[str, Any]:
    return synth.template_json("Dev", "Training")


def _statements(template: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    return role_statements(template, function_role(function(template, handler)[1]))


@pytest.mark.parametrize("handler", [RUNNER, REGISTRAR])
def test_both_launchers_know_the_group_and_the_stage_s_tolerances(dev: dict[str, Any], handler: str) -> None:
    config: StageConfig = CONFIGS["Dev"]
    env = function(dev, handler)[1]["Environment"]["Variables"]
    assert env["MODEL_PACKAGE_GROUP_NAME"]["Fn::ImportValue"]  # the Data stack's group (its ARN)
    assert float(env["CHAMPION_MAP_DROP_TOLERANCE"]) == config.training.champion_map_drop_tolerance == 0.02
    assert float(env["CHAMPION_CLASS_DROP_TOLERANCE"]) == config.training.champion_class_drop_tolerance
    assert int(env["CHAMPION_MIN_CLASS_INSTANCES"]) == config.training.champion_min_class_instances
    assert float(env["CHAMPION_CONFIDENCE"]) == config.training.champion_confidence


def test_runner_may_find_the_champion_in_its_stage_s_group_only(dev: dict[str, Any]) -> None:
    statements = _statements(dev, RUNNER)
    [listing] = statements_with(statements, "sagemaker:ListModelPackages")
    assert listing["Resource"] == "*"  # no resource type for this action (Service Authorization Reference)
    [describe] = statements_with(statements, "sagemaker:DescribeModelPackage")
    assert describe["Action"] == "sagemaker:DescribeModelPackage"
    assert ":model-package/yolo-detector-dev-*/*" in json.dumps(describe["Resource"])
    assert statements_with(statements, "sagemaker:CreateModelPackage") == []


def test_registrar_reads_jobs_model_tar_gz_and_writes_only_their_evaluation_reports(
    dev: dict[str, Any],
) -> None:
    statements = _statements(dev, REGISTRAR)
    [read] = statements_with(statements, "s3:GetObject")
    assert read["Action"] == "s3:GetObject"  # exactly the call it makes (the journey's permissions report)
    assert object_suffixes(read) == ["/training-output/yolo-dev-*/output/model.tar.gz"]
    [write] = statements_with(statements, "s3:PutObject")
    assert write["Action"] == "s3:PutObject"
    assert object_suffixes(write) == ["/training-output/yolo-dev-*/evaluation/*"]
    # the artifacts bucket's key (the Data stack's DataKey): decrypt to read, a data key to write
    [key] = [s for s in statements_with(statements, "kms:Decrypt") if "DataKey" in json.dumps(s["Resource"])]
    assert key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    [listing] = statements_with(statements, "sagemaker:ListModelPackages")
    assert listing["Resource"] == "*"
    assert statements_with(statements, "sagemaker:DescribeModelPackage") == []
    assert statements_with(statements, "s3:DeleteObject*") == []
