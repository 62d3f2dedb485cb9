"""boto3 clients for the launcher (built once per Lambda container, with the handler's settings), and how their
errors are classified (retry, tell the operator, or bug)."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from app.launcher.settings import Settings, load

_S = TypeVar("_S", bound=Settings)

# Standard mode retries throttling and transient errors with backoff inside one invocation; what is still
# throttled after that is raised so Lambda's async retry (and then the on-failure destination) takes over.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)

# Throttling and transient codes (the union botocore's standard retry mode treats as retryable).
RETRYABLE_CODES: frozenset[str] = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
# Not a throttle: the account has no quota (left) for the instance type. Retrying cannot help.
QUOTA_CODE = "ResourceLimitExceeded"


def client(service: str) -> Any:
    return boto3.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


def cold_start(settings_type: type[_S]) -> tuple[_S, Any, Any]:
    """A handler's settings and its SageMaker and SNS clients, built once per Lambda container: an invalid
    environment fails the first invocation with the variable's name."""
    settings, sagemaker, sns = _cold_start(settings_type)
    return cast(_S, settings), sagemaker, sns


@cache
def _cold_start(settings_type: type[Settings]) -> tuple[Settings, Any, Any]:
    return load(settings_type), client("sagemaker"), client("sns")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", str(exc)))


def is_retryable(exc: ClientError) -> bool:
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error_code(exc) in RETRYABLE_CODES or status == 429 or status >= 500


def is_not_found(exc: ClientError) -> bool:
    """SageMaker answers Describe* on a missing resource with ValidationException, not a 404 code."""
    message = error_message(exc).lower()
    return error_code(exc) in {"ValidationException", "ResourceNotFound"} and (
        "not found" in message or "could not find" in message or "does not exist" in message
    )


def console_url(region: str, job_name: str) -> str:
    """The SageMaker console page of a training job (runner answers and registrar notifications link it)."""
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}"
