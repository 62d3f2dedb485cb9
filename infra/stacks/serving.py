"""Serving stack of a stage: model, endpoint config, endpoint, autoscaling, alarms, dashboard.
(Skeleton: issue 7 fills it in.)"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.config import StageConfig
from infra.stacks.stateful import StatefulStack


class ServingStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, data: StatefulStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
