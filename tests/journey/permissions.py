"""Excessive permissions, measured: for every role a journey step ran as, what its synthesized identity policies
allow against what the journey used. A grant is "used" when the policy simulator named its statement, action
pattern and resource pattern among those that allowed one of the role's calls (tests/journey/policy.py Grant); every
other Allow statement, action pattern and resource pattern is reported unused. A wildcard action pattern is also
expanded to the actions it grants (cfn-lint's copy of the Service Authorization Reference action lists,
cfnlint/data/AdditionalSpecs/Policies.json), next to the few the journey used.

The report is JSON (``build/journey-permissions.json``): a finding is only as wide as the journey's path - a grant
for a step the journey does not take (an error path, an operator command it does not run) shows as unused too, which
is why the test asks a reason only for unused wildcard actions.
"""

from __future__ import annotations

import fnmatch
import json
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.journey.loader import Cloud, Role
from tests.journey.policy import Grant, PolicyCheck


@dataclass(frozen=True)
class Unused:
    role: str
    policy: str
    statement: str
    action_pattern: str

    @property
    def wildcard(self) -> bool:
        return "*" in self.action_pattern or "?" in self.action_pattern


def statements(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(identifier, statement) of a policy document, identified as the simulator identifies them: the Sid, else the
    statement's 1-based position."""
    found = document.get("Statement", [])
    items = found if isinstance(found, list) else [found]
    return [(str(s.get("Sid") or i + 1), s) for i, s in enumerate(items)]


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


@cache
def _service_actions() -> dict[str, list[str]]:
    import cfnlint

    data = json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text())
    return {service: sorted(entry.get("Actions", {})) for service, entry in data.items()}


def expand(pattern: str) -> list[str]:
    """The actions an action pattern grants (service:action, lower case as the reference data lists them)."""
    service, _, action = pattern.lower().partition(":")
    services = [s for s in _service_actions() if fnmatch.fnmatchcase(s, service)]
    return [f"{s}:{a}" for s in services for a in _service_actions()[s] if fnmatch.fnmatchcase(a, action)]


def role_report(role: Role, used: list[Grant], steps: list[str]) -> dict[str, Any]:
    by_statement: dict[tuple[str, str], list[Grant]] = defaultdict(list)
    for grant in used:
        by_statement[(grant.policy, grant.statement)].append(grant)
    grants = []
    unused: list[Unused] = []
    for policy, document in role.named_documents().items():
        for identifier, statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            hits = by_statement.get((policy, identifier), [])
            actions = _listed(statement.get("Action"))
            resources = _listed(statement.get("Resource"))
            used_by_pattern = {a: sorted({g.action for g in hits if g.action_pattern == a}) for a in actions}
            entry: dict[str, Any] = {
                "policy": policy,
                "statement": identifier,
                "actions": {
                    a: {
                        "used": used_by_pattern[a],
                        **({"grants": len(expand(a))} if "*" in a or "?" in a else {}),
                    }
                    for a in actions
                },
                "resources": {r: any(g.resource_pattern == r for g in hits) for r in resources},
            }
            if "NotAction" in statement or "NotResource" in statement:
                entry["not"] = {k: statement[k] for k in ("NotAction", "NotResource") if k in statement}
            if statement.get("Condition"):
                entry["condition"] = statement["Condition"]
            grants.append(entry)
            unused.extend(
                Unused(role.label, policy, identifier, a) for a in actions if not used_by_pattern[a]
            )
    return {
        "arn": role.arn,
        "steps": steps,
        "grants": grants,
        "unused_actions": [f"{u.action_pattern} ({u.policy} #{u.statement})" for u in unused],
        "unused_wildcards": [u.action_pattern for u in unused if u.wildcard],
        "unused_resources": [
            f"{r} ({g['policy']} #{g['statement']})"
            for g in grants
            for r, hit in g["resources"].items()
            if not hit
        ],
        "_unused": unused,
    }


def report(check: PolicyCheck, cloud: Cloud) -> dict[str, Any]:
    """Every role the journey ran as (``check.roles_run``), and the synthesized roles it never ran as."""
    steps: dict[str, list[str]] = defaultdict(list)
    for step, label, _action, _resource in check.checked:
        if step not in steps[label]:
            steps[label].append(step)
    roles = {
        label: role_report(role, [g for g in check.grants_used if g.role == label], steps[label])
        for label, role in sorted(check.roles_run.items())
    }
    never = sorted({r.label for r in cloud.roles.values()} - set(roles))
    return {"roles": roles, "roles_not_run": never}


def write(found: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    public = {
        "roles": {
            k: {f: v for f, v in r.items() if not f.startswith("_")} for k, r in found["roles"].items()
        },
        "roles_not_run": found["roles_not_run"],
    }
    path.write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
    return path
