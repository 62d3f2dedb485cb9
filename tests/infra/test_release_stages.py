"""A stage deploys a release or is refused at synth with the stage, the field and what was expected."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from infra.release_record import Release
from infra.stage_release import for_stage, serve_variant
from tests.infra.synthesized import EXAMPLE_RELEASE, make_stage_config


def test_stage_takes_the_release_digests_and_model() -> None:
    staged = for_stage(EXAMPLE_RELEASE, make_stage_config("Prod"))
    assert staged.serve == EXAMPLE_RELEASE.serve_image("gpu").uri
    assert (staged.train, staged.dataprep) == (
        EXAMPLE_RELEASE.images.train.uri,
        EXAMPLE_RELEASE.images.dataprep.uri,
    )
    assert staged.model == EXAMPLE_RELEASE.model


def test_building_images_leaves_the_model_from_the_release() -> None:
    staged = for_stage(EXAMPLE_RELEASE, make_stage_config("Dev"), build_images=True)
    assert (staged.serve, staged.train, staged.dataprep) == (None, None, None)
    assert staged.model == EXAMPLE_RELEASE.model


def test_a_stage_model_in_the_config_is_refused_next_to_a_release() -> None:
    config = make_stage_config("Staging", endpoint={"model_data_key": "models/x/model.tar.gz"})
    with pytest.raises(
        ConfigError, match=r"stage Staging: field 'endpoint.model_data_key'.*release names the model"
    ):
        for_stage(EXAMPLE_RELEASE, config)


def test_a_pinned_image_in_the_config_is_refused_next_to_a_release() -> None:
    pinned = EXAMPLE_RELEASE.images.train.uri
    with pytest.raises(ConfigError, match=r"stage Dev: field 'images.train': expected unset"):
        for_stage(EXAMPLE_RELEASE, make_stage_config("Dev", images={"train": pinned}))


def test_a_stage_in_another_region_than_the_release_is_refused() -> None:
    config = make_stage_config("Prod", account="333333333333", region="us-west-2")
    with pytest.raises(
        ConfigError, match=r"stage Prod: release .* field 'model.package_arn' is in eu-west-1, expected"
    ):
        for_stage(EXAMPLE_RELEASE, config)


def test_a_release_without_the_stage_serve_variant_is_refused() -> None:
    doc = EXAMPLE_RELEASE.model_dump(mode="json")
    del doc["images"]["serve"]["gpu"]
    cpu_only = Release.model_validate(doc)
    assert serve_variant("ml.g5.xlarge") == "gpu"
    with pytest.raises(ConfigError, match=r"stage Prod \(endpoint ml.g5.xlarge\): .*images.serve.gpu"):
        for_stage(cpu_only, make_stage_config("Prod"))


def _release_shipping(*precisions: str) -> Release:
    doc = EXAMPLE_RELEASE.model_dump(mode="json")
    doc["model"]["precisions"] = list(precisions)
    return Release.model_validate(doc)


def test_a_stage_asking_for_a_precision_the_model_lacks_is_refused_naming_stage_field_and_model() -> None:
    config = make_stage_config("Dev", endpoint={"precision": "int8"})
    with pytest.raises(
        ConfigError,
        match=r"stage Dev: field 'endpoint.precision' is int8, but the release's model .*'model.precisions'\) "
        r"ships only \['fp32'\]",
    ):
        for_stage(_release_shipping("fp32"), config)


def _release_with_int8_gate(gate: dict[str, object] | None) -> Release:
    doc = EXAMPLE_RELEASE.model_dump(mode="json")
    doc["model"]["int8_gate"] = gate
    return Release.model_validate(doc)


def test_an_int8_stage_refuses_a_model_that_passed_a_looser_int8_bar_than_the_stage_accepts() -> None:
    config = make_stage_config("Dev", endpoint={"precision": "int8"})
    gate = {"status": "shipped", "max_map50_95_drop": 1.0, "max_class_drop": 0.05}
    with pytest.raises(
        ConfigError,
        match=r"stage Dev serves int8, but the release's int8 graph passed a looser gate .*mAP50-95 drop <= 1, .*"
        r"training.int8_map_drop_cap 0.01",
    ):
        for_stage(_release_with_int8_gate(gate), config)


def test_an_int8_stage_refuses_a_record_that_says_nothing_of_the_int8_bar() -> None:
    config = make_stage_config("Dev", endpoint={"precision": "int8"})
    with pytest.raises(
        ConfigError,
        match=r"stage Dev serves int8, but the release's model \(field 'model.int8_gate'\) records no int8 gate",
    ):
        for_stage(_release_with_int8_gate(None), config)


def test_an_fp32_stage_ignores_the_int8_bar() -> None:
    config = make_stage_config("Dev")
    gate = {"status": "shipped", "max_map50_95_drop": 1.0, "max_class_drop": 1.0}
    assert for_stage(_release_with_int8_gate(gate), config).model.int8_gate is not None


def test_a_stage_asking_for_a_precision_the_model_ships_deploys_it() -> None:
    config = make_stage_config("Dev", endpoint={"precision": "int8"})
    assert for_stage(_release_shipping("fp32", "int8"), config).model.precisions == ("fp32", "int8")
