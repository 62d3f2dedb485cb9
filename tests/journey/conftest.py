"""The journey's world, built once for the module: moto for every account, the policy simulator (Node), the policy
check wrapped around botocore, and region eu-west-1 (the example stages' region) for every client."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.journey.loader import Cloud
from tests.journey.policy import PolicyCheck
from tests.journey.simulator import PolicySimulator
from tests.journey.world import World

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_REGION")}
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = REGION
    simulator = PolicySimulator()
    try:
        with mock_aws():
            cloud = Cloud(REGION)
            check = PolicyCheck(cloud, simulator)
            with check.watching():
                yield World.example(cloud, check, tmp_path_factory.mktemp("journey"))
    finally:
        simulator.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
