"""Session fixtures of the infra tests: synthesized CDK apps, built once (helpers in tests/infra/synthesized.py).

- ``synth``: the whole app (every stage of infra/stages.py) synthesized ONCE into a tmp cloud assembly;
  ``synth.template("Dev", "Data")`` -> ``aws_cdk.assertions.Template``, ``synth.template_json(...)`` -> dict,
  ``synth.outdir`` -> the assembly dir, ``synth.stage("Dev")`` -> the PlatformStage construct.
- ``stage_config("Dev", endpoint={"model_data_key": None})``: a stage's config with deep-merged overrides.
- ``synth_stages(config, ..., release=None, build_images=None)``: synthesize an app of just these configs (cached per
  arguments, so ask sparingly).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import paths
from infra.app import example_pipeline_stages
from infra.config import StageConfig
from tests.fixtures.release_records import operator_releases
from tests.infra.synthesized import EXAMPLE_RELEASE, SynthesizedApp, make_stage_config, synthesize


@pytest.fixture(scope="session", autouse=True)
def operator_current_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole infra suite runs with the operator's releases/ holding a real-looking CURRENT in another account
    and us-east-1: a test that read it instead of the example fixture would fail (issue 22)."""
    folder = operator_releases(tmp_path_factory.mktemp("operator-releases"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "RELEASES_DIR", folder)
        yield folder


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The whole app (infra/stages.py and its pipeline config) deploying the example release, synthesized once per
    session (cdk-nag runs as part of it)."""
    return synthesize(None, tmp_path_factory.mktemp("cdk.out"), releases_dir=paths.EXAMPLE_RELEASES_DIR)


@pytest.fixture(scope="session")
def pipeline_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The example pipeline (infra/stages.py EXAMPLE_PIPELINE, stages in the example accounts) with every stage,
    synthesized once per session: ``template("Dev", "Data")`` as usual, ``pipeline_template()`` for the pipeline."""
    stages, pipeline = example_pipeline_stages()
    return synthesize(
        stages, tmp_path_factory.mktemp("cdk.out.pipeline"), release=EXAMPLE_RELEASE, pipeline=pipeline
    )


@pytest.fixture(scope="session")
def stage_config() -> Callable[..., StageConfig]:
    return make_stage_config


@pytest.fixture(scope="session")
def synth_stages(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SynthesizedApp]:
    """Synthesize an app made of just the given stage configs; the same configs are synthesized once."""
    cache: dict[str, SynthesizedApp] = {}

    def build(*configs: StageConfig, **kwargs: Any) -> SynthesizedApp:
        key = json.dumps(
            [[c.model_dump(mode="json") for c in configs], {k: repr(v) for k, v in kwargs.items()}],
            sort_keys=True,
        )
        if key not in cache:
            cache[key] = synthesize(
                {c.name: c for c in configs}, tmp_path_factory.mktemp("cdk.out.custom"), **kwargs
            )
        return cache[key]

    return build
