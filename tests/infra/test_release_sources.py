"""Where releases come from (issue 22): the tests and the example pipeline read the example record
(tests/fixtures/releases/), never the operator's releases/CURRENT; a fresh clone (no CURRENT) deploys Data + Training
and no endpoint, and says so; a stage in a real account refuses the example's placeholder release.

The whole infra suite runs with a real-looking operator CURRENT in another account and us-east-1
(tests/infra/conftest.py ``operator_current_elsewhere``); the tests here check the two entry points that read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import paths
from infra.app import build_app
from infra.config import ConfigError
from infra.stage_release import for_stage
from scripts.synth import PIPELINE_STAGE, synthesize
from tests.fixtures.release_records import OPERATOR_REGION, OPERATOR_RELEASE_ID
from tests.infra.synthesized import EXAMPLE_RELEASE, make_stage_config

pytestmark = pytest.mark.usefixtures("operator_current_elsewhere")


def resources_of(template: Path, kind: str) -> list[dict]:
    return [r for r in json.loads(template.read_text())["Resources"].values() if r["Type"] == kind]


def test_make_synth_passes_with_a_real_current_release_in_another_account_and_region(
    tmp_path: Path, operator_current_elsewhere: Path
) -> None:
    """The failure the issue reproduced: make synth built the example pipeline (eu-west-1) from the operator's
    CURRENT and exited with "field 'model.package_arn' is in us-east-1"."""
    assert (operator_current_elsewhere / "CURRENT").read_text().strip() == OPERATOR_RELEASE_ID
    summaries = synthesize(tmp_path / "cdk.out")
    example = tmp_path / "cdk.out.pipeline-example"
    assert [s.stack for s in summaries if s.stage == PIPELINE_STAGE] == ["Pipeline"]
    # the operator's own app deploys the operator's release; the example pipeline the example record
    [dev_serving] = [s.template for s in summaries if (s.stage, s.stack) == ("Dev", "Serving")]
    assert OPERATOR_REGION in json.dumps(resources_of(dev_serving, "AWS::SageMaker::Model"))
    example_dev = next((example / "assembly-Dev").glob("DevServing*.template.json"))
    [model] = resources_of(example_dev, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["ModelDataUrl"] == EXAMPLE_RELEASE.model.model_data_uri


def test_a_fresh_clone_deploys_data_and_training_and_no_endpoint_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "releases"
    fresh.mkdir()
    monkeypatch.setattr(paths, "RELEASES_DIR", fresh)  # what `npx cdk deploy 'Dev/*'` reads in a fresh clone
    app = build_app(outdir=str(tmp_path / "cdk.out"))
    assembly = app.synth()
    notice = capsys.readouterr().err
    assert f"{fresh / 'CURRENT'}: no current release yet" in notice and "no endpoint" in notice
    dev = assembly.get_nested_assembly("assembly-Dev")
    types = {
        stack.hierarchical_id: {r["Type"] for r in stack.template.get("Resources", {}).values()}
        for stack in dev.stacks
    }
    assert "AWS::SageMaker::Endpoint" not in set().union(*types.values()), types
    assert "AWS::S3::Bucket" in types["Dev/Data"] and "AWS::Lambda::Function" in types["Dev/Training"]
    # every image is built from containers/ (Docker assets), none pinned to a release's digest
    assert "@sha256:" not in json.dumps([stack.template for stack in dev.stacks])
    built = {
        image["source"]["directory"]
        for manifest in Path(dev.directory).glob("*.assets.json")
        for image in json.loads(manifest.read_text()).get("dockerImages", {}).values()
    }
    assert len(built) >= 3, built  # dataprep, train, serve: built from containers/


def test_a_stage_in_a_real_account_refuses_the_example_placeholder_release() -> None:
    real = make_stage_config("Dev", account="210987654321", region="eu-west-1")
    with pytest.raises(
        ConfigError,
        match=r"stage Dev \(account 210987654321\): release r-20261130-1 field 'model.package_arn' is in the "
        r"example's placeholder account 111111111111",
    ):
        for_stage(EXAMPLE_RELEASE, real)


def test_the_example_stages_still_deploy_the_example_release() -> None:
    """Placeholder stage accounts (the example pipeline) may deploy the placeholder record."""
    staged = for_stage(EXAMPLE_RELEASE, make_stage_config("Dev", account="111111111111", region="eu-west-1"))
    assert staged.release_id == EXAMPLE_RELEASE.release_id
