"""Failure reporting under the SageMaker contract: non-zero exit + a readable reason in ``<opt_ml>/output/failure``.

SageMaker shows the first 1024 characters of that file as the job's FailureReason, so the one-line reason goes first
and details (a traceback tail, for unexpected errors) follow after it.
"""

from __future__ import annotations

import traceback
from pathlib import Path

FAILURE_REASON_LIMIT = 1024


def failure_text(exc: BaseException, *, expected: bool) -> str:
    """Reason first (within the 1024 characters SageMaker keeps), then the traceback tail for unexpected errors."""
    reason = str(exc).strip() or type(exc).__name__
    if not expected:
        reason = f"unexpected {type(exc).__name__}: {reason}"
    reason = reason[: FAILURE_REASON_LIMIT - 1]
    if expected:
        return reason + "\n"
    tail = "".join(traceback.format_exception(exc)[-6:])
    return f"{reason}\n\n{tail}"


def write_failure(output_dir: Path, text: str) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "failure"
    path.write_text(text)
    return path
