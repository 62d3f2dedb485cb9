"""The composition root and the image construct: stages in promotion order, each with its three stacks,
env-agnostic unless configured, stage tags on resources; images pinned by digest or built from an allow-listed
context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from app.contracts import launcher_environment
from infra.app import build_app
from infra.config import ConfigError, load_stage
from infra.constructs.images import BUILD_CONTEXT, ContainerImage, ImageName
from infra.stage_release import serve_variant
from infra.stages import STAGES
from tests.infra.synthesized import EXAMPLE_RELEASE, SynthesizedApp

PINNED = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/platform/serve@sha256:" + "ab" * 32


def _stack_artifacts(synth: SynthesizedApp, stage: str) -> dict[str, dict[str, object]]:
    manifest = json.loads((synth.outdir / f"assembly-{stage}" / "manifest.json").read_text())
    return {
        a["displayName"].split("/")[-1]: a
        for a in manifest["artifacts"].values()
        if a["type"] == "aws:cloudformation:stack"
    }


def test_app_has_every_stage_in_promotion_order(synth: SynthesizedApp) -> None:
    assert list(synth.stages) == list(STAGES) == ["Dev", "Staging", "Prod"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_has_data_training_and_serving_stacks(synth: SynthesizedApp, stage: str) -> None:
    assert sorted(_stack_artifacts(synth, stage)) == ["Data", "Serving", "Training"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_unconfigured_stage_is_environment_agnostic(synth: SynthesizedApp, stage: str) -> None:
    envs = {a["environment"] for a in _stack_artifacts(synth, stage).values()}
    assert envs == {"aws://unknown-account/unknown-region"}


def test_configured_account_and_region_pin_the_environment(synth_stages, stage_config) -> None:  # type: ignore[no-untyped-def]
    pinned = synth_stages(stage_config("Dev", account="123456789012", region="eu-west-1"))
    envs = {a["environment"] for a in _stack_artifacts(pinned, "Dev").values()}
    assert envs == {"aws://123456789012/eu-west-1"}


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_tags_reach_resources(synth: SynthesizedApp, stage: str) -> None:
    tags = synth.template_json(stage, "Data")["Resources"]["DatasetsBucket"]["Properties"]["Tags"]
    expected = load_stage(stage, STAGES[stage]).tags
    assert {t["Key"]: t["Value"] for t in tags if t["Key"] in expected} == expected


def _image_stack(tmp_path: Path, **images: str | None) -> tuple[cdk.App, dict[str, ContainerImage]]:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Images")
    built = {
        name: ContainerImage(stack, name.capitalize(), name=cast(ImageName, name), pinned_uri=uri)
        for name, uri in images.items()
    }
    return app, built


def test_pinned_image_is_referenced_by_digest_without_building(tmp_path: Path) -> None:
    app, images = _image_stack(tmp_path, serve=PINNED)
    assert images["serve"].image_uri == PINNED
    assert images["serve"].asset is None
    assembly = app.synth()
    assert not list(Path(assembly.directory).glob("asset.*"))


def test_pinned_image_grants_pull_on_its_repository_arn(tmp_path: Path) -> None:
    _, images = _image_stack(tmp_path, serve=PINNED)
    stack = cdk.Stack.of(images["serve"])
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    images["serve"].grant_pull(role)
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        [
                                            "arn:",
                                            {"Ref": "AWS::Partition"},
                                            ":ecr:eu-west-1:111122223333:repository/platform/serve",
                                        ],
                                    ]
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_malformed_pinned_image_names_the_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"images.train: expected"):
        _image_stack(tmp_path, train="train:latest")


@pytest.mark.parametrize("name", list(BUILD_CONTEXT))
def test_image_build_context_holds_only_its_allow_list(tmp_path: Path, name: str) -> None:
    app, _ = _image_stack(tmp_path, **{name: None})
    (asset_dir,) = Path(app.synth().directory).glob("asset.*")
    staged = {p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file()}
    allowed = BUILD_CONTEXT[name]
    assert f"containers/{name}/Dockerfile" in staged
    assert [p for p in staged if not any(p == a or p.startswith(f"{a}/") for a in allowed)] == []
    assert not any(p.startswith("tests/") or "__pycache__" in p for p in staged)


def test_image_asset_is_built_for_linux_amd64(tmp_path: Path) -> None:
    app, _ = _image_stack(tmp_path, serve=None)
    (assets_file,) = Path(app.synth().directory).glob("Images.assets.json")
    (image,) = json.loads(assets_file.read_text())["dockerImages"].values()
    assert image["source"]["platform"] == "linux/amd64"


@pytest.mark.parametrize("stage", ["Dev", "Staging", "Prod"])
def test_stage_runs_the_release_serve_image_of_its_instance_variant_and_builds_nothing(
    synth: SynthesizedApp, stage: str
) -> None:
    variant = serve_variant(load_stage(stage, STAGES[stage]).endpoint.instance_type)
    serving = synth.template_json(stage, "Serving")["Resources"]
    (model,) = [r for r in serving.values() if r["Type"] == "AWS::SageMaker::Model"]
    assert model["Properties"]["PrimaryContainer"]["Image"] == EXAMPLE_RELEASE.serve_image(variant).uri
    for assets_file in (synth.outdir / f"assembly-{stage}").glob("*.assets.json"):
        assert json.loads(assets_file.read_text()).get("dockerImages", {}) == {}


def test_first_stage_can_build_its_images_with_the_variant_of_its_instance_type(
    synth_stages, stage_config
) -> None:  # type: ignore[no-untyped-def]
    gpu_dev = stage_config("Dev", endpoint={"instance_type": "ml.g5.xlarge"})
    built = synth_stages(gpu_dev, release=EXAMPLE_RELEASE, build_images=["Dev"])
    images = [
        (assets_file.name, image)
        for assets_file in (built.outdir / "assembly-Dev").glob("*.assets.json")
        for image in json.loads(assets_file.read_text()).get("dockerImages", {}).values()
        if image["source"]["dockerFile"] == "containers/serve/Dockerfile"
    ]
    # Built once, in the Data stack, for the registrar (Training) and the endpoint (Serving) alike; the registry
    # builds the other variant too (the one later stages may serve on), once.
    assert all(name.startswith("DevData") for name, _ in images)
    variants = sorted(image["source"].get("dockerBuildArgs", {}).get("VARIANT", "cpu") for _, image in images)
    assert variants == ["cpu", "gpu"]
    training = built.template_json("Dev", "Training")["Resources"]
    [registrar] = [
        r["Properties"]
        for r in training.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"] == "app.launcher.registrar.handler"
    ]
    serving = built.template_json("Dev", "Serving")["Resources"]
    [model] = [r["Properties"] for r in serving.values() if r["Type"] == "AWS::SageMaker::Model"]
    registered = registrar["Environment"]["Variables"][launcher_environment.SERVE_IMAGE_URI]
    assert registered == model["PrimaryContainer"]["Image"]
    assert "Fn::ImportValue" not in json.dumps(registered)  # the asset's URI, not an export of the Data stack


def test_a_later_stage_may_not_build_its_images(stage_config) -> None:  # type: ignore[no-untyped-def]
    configs = {n: stage_config(n) for n in ("Dev", "Prod")}
    with pytest.raises(ConfigError, match=r"context 'build_images': expected 'Dev'.*got \['Prod'\]"):
        build_app(configs, release=EXAMPLE_RELEASE, build_images=["Prod"])


def test_synth_recognises_the_assemblies_it_writes(
    synth: SynthesizedApp, pipeline_synth: SynthesizedApp
) -> None:
    """scripts/synth.py replaces a folder only when it is a cloud assembly a synth wrote: what the CDK writes today
    (stage assemblies, the pipeline's assets and graph, the nag report) must pass that check."""
    from scripts.synth import not_an_assembly

    assert not_an_assembly(synth.outdir) is None
    assert not_an_assembly(pipeline_synth.outdir) is None
