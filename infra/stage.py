"""One deployment stage: the stateful stack (data, keys, repositories, model registry) and the stateless training
and serving stacks that use it, wired by object references. The stage deploys one release (infra/stage_release.py)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.config import StageConfig
from infra.stacks.serving import ServingStack
from infra.stacks.stateful import StatefulStack
from infra.stacks.training import TrainingStack
from infra.stage_release import StageRelease


class PlatformStage(cdk.Stage):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        release: StageRelease | None = None,
        registry: bool = False,
        **kwargs: Any,
    ) -> None:
        env = cdk.Environment(account=config.account, region=config.region)
        super().__init__(scope, construct_id, env=env, **kwargs)
        self.config = config
        self.release = release
        # registry: the first stage in promotion order, whose repositories and model store every release uses
        self.data = StatefulStack(self, "Data", config=config, release=release, registry=registry)
        self.training = TrainingStack(self, "Training", config=config, data=self.data, release=release)
        self.serving = ServingStack(self, "Serving", config=config, data=self.data, release=release)
        for key, value in sorted(config.tags.items()):
            cdk.Tags.of(self).add(key, value)
