"""scripts/lib/image_access.py: which pull actions a repository policy leaves a stage's account without (the policy
forms ECR documents: account root or id, '*', action wildcards, Deny, Condition)."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.lib.image_access import PULL_ACTIONS, pull_gaps

STAGE = "222222222222"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **extra}


@pytest.mark.parametrize(
    "principal",
    [{"AWS": f"arn:aws:iam::{STAGE}:root"}, {"AWS": [STAGE]}, "*", {"AWS": "*"}],
)
def test_the_account_root_its_id_or_everyone_may_pull(principal: Any) -> None:
    assert (
        pull_gaps(policy(allow(principal, "ecr:*")), partition="aws", account=STAGE, same_account=False) == {}
    )


def test_a_grant_to_one_role_of_the_account_does_not_cover_the_stage() -> None:
    """The execution role has no physical name: a grant by role ARN cannot be matched before the deploy."""
    role = {"AWS": f"arn:aws:iam::{STAGE}:role/someone"}
    gaps = pull_gaps(
        policy(allow(role, list(PULL_ACTIONS))), partition="aws", account=STAGE, same_account=False
    )
    assert set(gaps) == set(PULL_ACTIONS)


def test_an_allow_under_a_condition_does_not_count() -> None:
    conditional = allow(
        "*", "ecr:BatchGet*", Sid="Org", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}}
    )
    gaps = pull_gaps(
        policy(conditional, allow({"AWS": STAGE}, "ecr:GetDownloadUrlForLayer")),
        partition="aws",
        account=STAGE,
        same_account=False,
    )
    assert gaps == {"ecr:BatchGetImage": "allowed only under a Condition (statement 'Org')"}


def test_a_deny_wins_over_an_allow() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "ecr:GetDownloadUrlForLayer"}
    gaps = pull_gaps(policy(allow("*", "ecr:*"), deny), partition="aws", account=STAGE, same_account=False)
    assert gaps == {"ecr:GetDownloadUrlForLayer": "denied by statement 2"}


def test_the_registry_account_needs_no_repository_policy() -> None:
    assert pull_gaps(None, partition="aws", account=STAGE, same_account=True) == {}
