"""The journey's world, built once for the module: moto for every account, the policy simulator (Node), the policy
check wrapped around botocore, SageMaker hosting stood in locally (tests/journey/hosting.py), region eu-west-1 (the
example stages' region) for every client, and Dev's ``label_sources`` naming the labelling job's bucket."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from infra import stages
from tests.journey.hosting import Hosting
from tests.journey.loader import Cloud
from tests.journey.policy import PolicyCheck
from tests.journey.simulator import PolicySimulator
from tests.journey.world import World

REGION = "eu-west-1"
# README step 3: labels outside the datasets bucket's raw/ are read from "a location listed in the stage's
# label_sources"; the journey's Ground Truth labelling job writes to this bucket, so the operator lists it for Dev
# (infra/stages.py, where every command and the synth read it).
LABELING_BUCKET = "journey-labeling-input"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_REGION")}
    saved_dev = copy.deepcopy(stages.STAGES["Dev"])
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = REGION
    stages.STAGES["Dev"]["label_sources"] = [{"uri": f"s3://{LABELING_BUCKET}/"}]
    simulator = PolicySimulator()
    workdir = tmp_path_factory.mktemp("journey")
    hosting = Hosting(workdir / "hosting")
    try:
        with mock_aws():
            cloud = Cloud(REGION)
            check = PolicyCheck(cloud, simulator)
            with check.watching():
                yield World.example(cloud, check, workdir, hosting)
    finally:
        hosting.close()
        simulator.close()
        stages.STAGES["Dev"].clear()
        stages.STAGES["Dev"].update(saved_dev)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
