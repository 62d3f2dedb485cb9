"""Typed serving errors: each carries its contract code and HTTP status (app.contracts.invocation.ERROR_STATUS).

A request that fails with one of these is the client's problem (or load) and is answered, not traced. Anything
else that escapes a handler is a bug: 500 ``internal_error`` with the trace in the log.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.contracts.invocation import ERROR_STATUS


class ServingError(Exception):
    """Base: ``code`` is the contract's error code; the message says what was wrong and what was expected."""

    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, *, code: str, **kwargs: Any) -> None:
        """``class BadImage(ServingError, code="bad_image")``: each error names its code where it is declared."""
        super().__init_subclass__(**kwargs)
        if code not in ERROR_STATUS:  # fail at import, not on the first request that raises it
            raise TypeError(f"{cls.__name__}: code {code!r} is not in app.contracts.invocation.ERROR_STATUS")
        cls.code = code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]


class BadImage(ServingError, code="bad_image"):
    """An image that cannot be served: empty, not base64, unreadable or truncated, or too many pixels."""


class BadRequest(ServingError, code="bad_request"):
    """A body that is not the contract's shape (not JSON, unknown fields, too many images) or is cut short."""


class BadOption(ServingError, code="bad_option"):
    """``conf``, ``iou`` or ``max_det`` malformed or out of range, in the custom-attributes header or the body."""


class NotAcceptable(ServingError, code="not_acceptable"):
    """An ``Accept`` header that rules out application/json, the only kind of answer there is."""


class PayloadTooLarge(ServingError, code="payload_too_large"):
    """A body over SERVING_MAX_BODY_BYTES, refused as soon as that is known (without reading the rest)."""


class UnsupportedMediaType(ServingError, code="unsupported_media_type"):
    """A ``Content-Type`` that is none of the raw image types nor application/json."""


class NotReady(ServingError, code="not_ready"):
    """Before warm-up has finished (``/ping`` says the same) or once the server is shutting down."""


class Overloaded(ServingError, code="overloaded"):
    """503 with ``Retry-After``: when the requests ahead are expected to have drained."""

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(ServingError, code="deadline_exceeded"):
    """No answer within SERVING_DEADLINE_S: work not started by then is dropped, and a batch is never half answered."""
