"""Typed serving errors: each carries its contract code and HTTP status (app.contracts.invocation.ERROR_STATUS).

A request that fails with one of these is the client's problem (or load) and is answered, not traced. Anything
else that escapes a handler is a bug: 500 ``internal_error`` with the trace in the log.
"""

from __future__ import annotations

from typing import ClassVar

from app.contracts.invocation import ERROR_STATUS


class ServingError(Exception):
    """Base: ``code`` is the contract's error code; the message says what was wrong and what was expected."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadImage(ServingError):
    code = "bad_image"


class BadRequest(ServingError):
    code = "bad_request"


class BadOption(ServingError):
    code = "bad_option"


class NotAcceptable(ServingError):
    code = "not_acceptable"


class PayloadTooLarge(ServingError):
    code = "payload_too_large"


class UnsupportedMediaType(ServingError):
    code = "unsupported_media_type"


class NotReady(ServingError):
    code = "not_ready"


class Overloaded(ServingError):
    """503 with ``Retry-After``: when the requests ahead are expected to have drained."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(ServingError):
    code = "deadline_exceeded"
