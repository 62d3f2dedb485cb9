"""What the launcher sent to AWS: the parameters of every API call a boto3 client makes."""

from __future__ import annotations

from typing import Any


class CallRecorder:
    """Records the parameters of every API call a boto3 client makes (what we sent, not what moto keeps)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]
