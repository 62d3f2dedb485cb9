"""What a stage's deploy needs of the account, for ``python -m scripts.training quota`` and the release preflight.

- Blue/green endpoint updates run the old and the new fleet side by side, with autoscaling suspended while the update
  runs, so a deploy at the variant's max capacity needs 2 x max instances of the endpoint type. The quota checks ask
  for that (``endpoint_instances_needed`` of the quota ``endpoint_quota_name``); ``blue_green_note`` says when a
  quota covers max but not 2 x max.
- Lambda keeps at least 100 concurrent executions unreserved: "You can reserve up to the Unreserved account
  concurrency value that is shown, minus 100 for functions that don't have reserved concurrency" (AWS Lambda,
  Configuring reserved concurrency, https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html, and
  Lambda quotas, https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, read 2026-11-30). A stage
  that opts into ``training.launcher_reserved_concurrency`` fails CREATE where that would break the minimum;
  ``lambda_concurrency`` reads the account's figures (GetAccountSettings) and says so before the deploy does.
- A quota's value: the applied one, else the AWS default (``quota_values``; a fresh account has only defaults).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MIN_UNRESERVED_CONCURRENCY = 100
# The runner and the registrar (infra/constructs/training_launchers.py), each with the stage's reservation.
LAUNCHER_FUNCTIONS = 2


def endpoint_quota_name(instance_type: str) -> str:
    """The Service Quotas name of a SageMaker endpoint instance type (service code ``sagemaker``)."""
    return f"{instance_type} for endpoint usage"


def endpoint_instances_needed(max_capacity: int) -> int:
    """Instances of the endpoint type a blue/green deploy at max capacity runs at once (old + new fleet)."""
    return 2 * max_capacity


def blue_green_note(available: float | None, max_capacity: int) -> str | None:
    """Why an endpoint quota that covers max capacity is still LOW, and what to do; None when it is not that case."""
    needed = endpoint_instances_needed(max_capacity)
    if available is None or available >= needed or available < max_capacity:
        return None
    return (
        f"    blue/green: {available:g} covers max capacity {max_capacity} but not the old and the new fleet side by "
        f"side during a deploy at max ({needed}); deploy off peak (the fleet near min_capacity), or request {needed}"
    )


def quota_values(service_quotas: Any, names: Iterable[str]) -> dict[str, tuple[float | None, str]]:
    """name -> (value, "applied" | "default") of SageMaker quotas; (None, "") for a name the account does not have.

    ListServiceQuotas "Lists the applied quota values ... If the applied quota value is not available for a quota,
    the quota is not retrieved" (Service Quotas API Reference, ListServiceQuotas,
    https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html): a fresh account's
    quota is then only in ListAWSDefaultServiceQuotas ("the default values for the quotas", same reference,
    API_ListAWSDefaultServiceQuotas.html; read 2026-12-05). The defaults are read only for names still missing."""
    wanted = list(dict.fromkeys(names))
    found: dict[str, tuple[float | None, str]] = {}
    for operation, source in (
        ("list_service_quotas", "applied"),
        ("list_aws_default_service_quotas", "default"),
    ):
        if len(found) == len(wanted):
            break
        for page in service_quotas.get_paginator(operation).paginate(ServiceCode="sagemaker"):
            for quota in page.get("Quotas", []):
                name = quota.get("QuotaName")
                if name in wanted and name not in found:
                    found[name] = (float(quota["Value"]), source)
    return {name: found.get(name, (None, "")) for name in wanted}


def quota_value(service_quotas: Any, name: str) -> tuple[float | None, str]:
    """(value, "applied" | "default") of the SageMaker quota named ``name``; (None, "") when the account has none."""
    return quota_values(service_quotas, [name])[name]


@dataclass(frozen=True)
class ConcurrencyCheck:
    """The account's Lambda concurrency against what the stage would reserve."""

    account_limit: int
    unreserved: int
    per_function: int | None  # the stage's opt-in reservation per launcher; None = none

    @property
    def reserved(self) -> int:
        return LAUNCHER_FUNCTIONS * (self.per_function or 0)

    @property
    def left(self) -> int:
        return self.unreserved - self.reserved

    @property
    def ok(self) -> bool:
        return self.per_function is None or self.left >= MIN_UNRESERVED_CONCURRENCY

    def line(self) -> str:
        head = f"{'ok ' if self.ok else 'LOW'} Lambda unreserved concurrency: {self.unreserved} of {self.account_limit}"
        if self.per_function is None:
            return f"{head}; the launchers reserve none (training.launcher_reserved_concurrency unset)"
        tail = f"; the stage reserves {LAUNCHER_FUNCTIONS} x {self.per_function} = {self.reserved}, leaving {self.left}"
        if self.ok:
            return f"{head}{tail} (>= {MIN_UNRESERVED_CONCURRENCY})"
        return (
            f"{head}{tail}, below Lambda's minimum of {MIN_UNRESERVED_CONCURRENCY} unreserved: the Training stack "
            "would fail to create; unset training.launcher_reserved_concurrency or request a higher 'Concurrent "
            "executions' quota (if the stage is already deployed with this reservation, it is already counted above)"
        )


def lambda_concurrency(lambda_client: Any, per_function: int | None) -> ConcurrencyCheck:
    """Read the account's concurrency (Lambda GetAccountSettings) for the stage's opt-in reservation."""
    limit = lambda_client.get_account_settings()["AccountLimit"]
    return ConcurrencyCheck(
        account_limit=int(limit["ConcurrentExecutions"]),
        unreserved=int(limit["UnreservedConcurrentExecutions"]),
        per_function=per_function,
    )
