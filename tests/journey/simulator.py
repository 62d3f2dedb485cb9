"""AWS's policy evaluation for the journey, by a maintained simulator rather than a hand-written evaluator:
``@cloud-copilot/iam-simulate`` (npm, AGPL-3.0, test-only) run through Node as the CDK is, one long-lived process
(tests/journey/iam_simulate.cjs) answering one JSON line per request. It evaluates identity policies, resource
policies (bucket, repository, key policies) and cross-account requests, which moto does not."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.paths import REPO_ROOT

DRIVER = Path(__file__).with_name("iam_simulate.cjs")
NODE = REPO_ROOT / "node_modules" / ".bin" / "node"


@dataclass(frozen=True)
class Decision:
    result: str  # Allowed | ImplicitlyDenied | ExplicitlyDenied | Error
    detail: Any

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"

    def why(self) -> str:
        """Which side said no (identity policy, resource policy), for the failure message."""
        if self.result == "Error":
            return f"simulator error: {json.dumps(self.detail)[:400]}"
        analysis = self.detail or {}
        parts = []
        for side in ("identityAnalysis", "resourceAnalysis"):
            verdict = (analysis.get(side) or {}).get("result")
            if verdict:
                parts.append(f"{side.removesuffix('Analysis')} policy: {verdict}")
        return ", ".join(parts) or self.result


class PolicySimulator:
    def __init__(self) -> None:
        node = str(NODE) if NODE.exists() else "node"
        self._proc = subprocess.Popen(
            [node, str(DRIVER)], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._lock = threading.Lock()  # data prep copies images from many threads: one request at a time

    def decide(
        self,
        *,
        principal: str,
        action: str,
        resource: str,
        resource_account: str,
        identity_policies: dict[str, dict[str, Any]],
        resource_policy: dict[str, Any] | None,
        context: dict[str, Any] | None = None,
    ) -> Decision:
        request: dict[str, Any] = {
            "request": {
                "action": action,
                "principal": principal,
                "resource": {"resource": resource, "accountId": resource_account},
                "contextVariables": context or {},
            },
            "identityPolicies": [{"name": name, "policy": doc} for name, doc in identity_policies.items()],
        }
        if resource_policy is not None:
            request["resourcePolicy"] = resource_policy
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            answer = json.loads(self._proc.stdout.readline())
        return Decision(result=answer["result"], detail=answer["detail"])

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)
