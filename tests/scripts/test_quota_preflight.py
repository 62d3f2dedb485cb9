"""`python -m scripts.training quota`: blue/green capacity (2 x max) and the account's unreserved Lambda concurrency,
against botocore Stubber (moto runs neither Service Quotas nor Lambda GetAccountSettings offline). ~2 s."""

from __future__ import annotations

import argparse
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra.app import stage_configs
from scripts import training
from scripts.lib import cli
from scripts.lib.capacity_checks import MIN_UNRESERVED_CONCURRENCY, ConcurrencyCheck, lambda_concurrency

REGION = "us-east-1"


def account_settings(limit: int, unreserved: int) -> dict[str, Any]:
    return {"AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}}


class StubbedSession:
    """A boto3 session whose clients answer from Stubber (the code under test is the real command)."""

    def __init__(
        self, quotas: dict[str, float], limit: int, unreserved: int, defaults: dict[str, float] | None = None
    ) -> None:
        self.clients = {
            "service-quotas": boto3.client("service-quotas", region_name=REGION),
            "lambda": boto3.client("lambda", region_name=REGION),
        }
        self.stubbers = [Stubber(c) for c in self.clients.values()]
        listed = [{"QuotaName": name, "Value": value} for name, value in quotas.items()]
        self.stubbers[0].add_response("list_service_quotas", {"Quotas": listed}, {"ServiceCode": "sagemaker"})
        if defaults is not None:  # the AWS defaults, read for the quotas with no applied value
            default_list = [{"QuotaName": name, "Value": value} for name, value in defaults.items()]
            self.stubbers[0].add_response(
                "list_aws_default_service_quotas", {"Quotas": default_list}, {"ServiceCode": "sagemaker"}
            )
        self.stubbers[1].add_response("get_account_settings", account_settings(limit, unreserved), {})
        for stubber in self.stubbers:
            stubber.activate()

    def client(self, name: str) -> Any:
        return self.clients[name]


def run_quota(
    stage: str, quotas: dict[str, float], unreserved: int, defaults: dict[str, float] | None = None
) -> int:
    session = StubbedSession(quotas, limit=max(unreserved, 10), unreserved=unreserved, defaults=defaults)
    return training.cmd_quota(argparse.Namespace(stage=stage), session)


PROD_QUOTAS = {"ml.g5.2xlarge for spot training job usage": 1.0, "ml.g5.xlarge for endpoint usage": 16.0}


def test_endpoint_quota_asks_for_the_old_and_new_fleet_at_max_capacity() -> None:
    needed = training.needed_quotas("Staging")
    max_capacity = stage_configs()["Staging"].endpoint.autoscaling.max_capacity
    instance_type = stage_configs()["Staging"].endpoint.instance_type
    assert needed[f"{instance_type} for endpoint usage"] == 2 * max_capacity


def test_quota_covering_max_but_not_blue_green_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_quota("Prod", {**PROD_QUOTAS, "ml.g5.xlarge for endpoint usage": 8.0}, 1000)
    out = capsys.readouterr().out
    assert code == cli.EXIT_CHECK_FAILED
    assert "LOW ml.g5.xlarge for endpoint usage: need 16, have 8" in out
    assert "blue/green: 8 covers max capacity 8 but not the old and the new fleet" in out
    assert "deploy off peak" in out


def test_quota_of_a_fresh_account_is_read_from_the_aws_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 22: ListServiceQuotas does not retrieve a quota with no applied value, so `training quota` said
    'missing' (and failed) on a fresh account whose default covers the need; the release preflight already read
    the default (one function for both: scripts/lib/capacity_checks.py quota_values)."""
    endpoint = "ml.g5.xlarge for endpoint usage"
    applied = {k: v for k, v in PROD_QUOTAS.items() if k != endpoint}
    code = run_quota(
        "Prod", applied, 1000, defaults={endpoint: 20.0, "ml.g5.2xlarge for training job usage": 0.0}
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"ok  {endpoint}: need 16, have 20 (AWS default: none applied)" in out


def test_unreserved_concurrency_is_reported_when_nothing_is_reserved(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert stage_configs()["Prod"].training.launcher_reserved_concurrency is None
    code = run_quota("Prod", PROD_QUOTAS, 10)
    out = capsys.readouterr().out
    assert code == 0
    assert "ok  Lambda unreserved concurrency: 10 of 10; the launchers reserve none" in out


def test_opt_in_reservation_below_the_unreserved_minimum_fails_the_check() -> None:
    client = boto3.client("lambda", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response("get_account_settings", account_settings(100, 100), {})
        check = lambda_concurrency(client, 2)
    assert not check.ok
    assert check.line().startswith(
        "LOW Lambda unreserved concurrency: 100 of 100; the stage reserves 2 x 2 = 4, leaving 96"
    )
    assert "below Lambda's minimum of 100 unreserved" in check.line()


def test_reservation_leaving_the_minimum_passes() -> None:
    check = ConcurrencyCheck(account_limit=1000, unreserved=1000, per_function=450)
    assert check.ok and check.left == MIN_UNRESERVED_CONCURRENCY
    assert not ConcurrencyCheck(account_limit=1000, unreserved=1000, per_function=451).ok


def test_concurrency_comes_from_lambda_get_account_settings() -> None:
    client = boto3.client("lambda", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response("get_account_settings", account_settings(1000, 990), {})
        check = lambda_concurrency(client, 3)
    assert (check.account_limit, check.unreserved, check.reserved) == (1000, 990, 6)
