"""Can a stage pull the release's images? The repository side of an ECR pull, read at run time (release preflight).

"A user or role only needs to be allowed permission for an action through either a repository policy or an IAM
policy but not both for the action to be allowed", and an action denied by either is denied (Amazon ECR User Guide,
"Private repository policies", https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html, read
2026-12-05). Across accounts the identity side alone is not enough: the repository policy must allow the stage's
account the pull actions (ECR's "Allow another account" example grants ``ecr:BatchGetImage`` and
``ecr:GetDownloadUrlForLayer`` to ``arn:aws:iam::<account>:root``, "Private repository policy examples in Amazon
ECR", https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html, read 2026-12-05). In the
registry's own account the identity policy suffices, but a Deny in the repository policy still wins.

``ecr:GetAuthorizationToken`` is identity-side only ("through an IAM policy", same page): the stage's execution role
has it from ``grant_pull``; tests/journey checks it on the synthesized policies, this module does not.

The stage's principal is its account (``arn:<partition>:iam::<account>:root``): the execution role has no physical
name, so a grant to one role by ARN cannot be matched before the deploy, and infra/stacks/stateful.py grants the
account. Statements with a Condition are not evaluated: an Allow under one does not count, a Deny under one counts
(a preflight that passes must mean the pull works).
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from botocore.exceptions import ClientError

from infra.release_record import Release
from scripts.lib.endpoint_checks import Report

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


def account_principal(partition: str, account: str) -> str:
    return f"arn:{partition}:iam::{account}:root"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _names_account(statement: dict[str, Any], partition: str, account: str) -> bool:
    """The statement's Principal includes the whole account (or everyone)."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    names = {str(p) for p in _listed(principal.get("AWS", []))}
    return bool(names & {"*", account, account_principal(partition, account)})


def _covers(statement: dict[str, Any], action: str) -> bool:
    patterns = _listed(statement.get("Action", []))
    return any(fnmatchcase(action.lower(), str(p).lower()) for p in patterns)


def _label(statement: dict[str, Any], index: int) -> str:
    return f"statement '{statement['Sid']}'" if statement.get("Sid") else f"statement {index + 1}"


def pull_gaps(
    policy: dict[str, Any] | None, *, partition: str, account: str, same_account: bool
) -> dict[str, str]:
    """Pull action -> why ``account`` may not do it on a repository with ``policy`` (None: the repository has no
    policy); empty when every action of PULL_ACTIONS is allowed."""
    statements = [s for s in _listed((policy or {}).get("Statement", [])) if isinstance(s, dict)]
    gaps: dict[str, str] = {}
    for action in PULL_ACTIONS:
        relevant = [
            (i, s)
            for i, s in enumerate(statements)
            if "NotPrincipal" not in s and "NotAction" not in s and _names_account(s, partition, account)
        ]
        relevant = [(i, s) for i, s in relevant if _covers(s, action)]
        deny = next(((i, s) for i, s in relevant if s.get("Effect") == "Deny"), None)
        if deny is not None:
            conditional = " (under a Condition)" if "Condition" in deny[1] else ""
            gaps[action] = f"denied by {_label(deny[1], deny[0])}{conditional}"
            continue
        if same_account:
            continue  # the registry's own account: the role's identity policy grants it
        allows = [(i, s) for i, s in relevant if s.get("Effect") == "Allow"]
        if any("Condition" not in s for _, s in allows):
            continue
        if allows:
            gaps[action] = f"allowed only under a Condition ({_label(allows[0][1], allows[0][0])})"
        elif policy is None:
            gaps[action] = "the repository has no policy"
        else:
            gaps[action] = "no statement of the repository policy allows it"
    return gaps


def _read_policy(ecr: Any, registry: str, name: str) -> dict[str, Any] | None:
    """The repository's policy (ECR GetRepositoryPolicy, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/
    API_GetRepositoryPolicy.html); None when it has none."""
    try:
        text = ecr.get_repository_policy(registryId=registry, repositoryName=name)["policyText"]
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        return None
    parsed = json.loads(text)
    return parsed if isinstance(parsed, dict) else None


def check_pull_access(report: Report, release: Release, ecr: Any, *, stage: str, account: str) -> None:
    """One check per repository of the release: may ``stage``'s account pull from it? A failure names repository,
    principal and each missing action."""
    partition = release.model.package_arn.split(":")[1]
    principal = account_principal(partition, account)
    repositories = {image.repository: image for image in release.image_fields().values()}
    for repository, image in sorted(repositories.items()):
        check = f"pull {image.repository_name}"
        try:
            policy = _read_policy(ecr, image.account, image.repository_name)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            report.add(
                check,
                False,
                f"{repository}: could not read the repository policy ({error.get('Code')}: {error.get('Message')})",
            )
            continue
        same_account = image.account == account
        gaps = pull_gaps(policy, partition=partition, account=account, same_account=same_account)
        if gaps:
            missing = "; ".join(f"{action}: {why}" for action, why in gaps.items())
            report.add(check, False, f"{repository}: principal {principal} ({stage}) may not pull: {missing}")
        elif same_account:
            report.add(
                check,
                True,
                f"{stage} is the registry's account {account}: its roles' own policies grant the pull",
            )
        else:
            report.add(check, True, f"the repository policy lets {principal} ({stage}) pull")
