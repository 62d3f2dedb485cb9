"""One way for every operator command to fail: a one-line ``error: ...`` naming what to fix, and documented exit codes.

Every command under ``scripts/`` wraps its ``main`` with :func:`command` and validates its arguments with the
argparse types below *before* any work starts (a plot or JSON destination is checked before a ten-minute load test,
not after). AWS errors (no credentials, unknown profile, access denied, throttling, not found) and our own domain
errors become one line on stderr; only a bug prints a traceback.

Exit codes (the same for every command):
    0  success
    1  error: the command could not do its work (bad input found after parsing, AWS error, missing stack, ...)
    2  usage: argparse rejected the command line
    3  check failed: the command ran and its verdict is "no" (a gate, a verification, a missing quota)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_INTERRUPTED = 130

REPO_ROOT = Path(__file__).resolve().parents[1]

# CloudFormation statuses in which a stack exists but its outputs cannot be trusted.
_FAILED_STATUSES = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "DELETE_FAILED",
        "DELETE_IN_PROGRESS",
        "UPDATE_ROLLBACK_FAILED",
    }
)


class OperatorError(RuntimeError):
    """Something the operator must fix; printed as one ``error:`` line without a traceback."""


class CheckFailed(OperatorError):
    """The command ran and its verdict is "no" (exit code 3)."""


def aws_error_message(exc: BaseException) -> str | None:
    """One line naming what to fix for an AWS SDK error, or None when ``exc`` is not one."""
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - boto3 is a core dependency
        return None
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE (or pass --profile) or run 'aws configure'"
    if isinstance(exc, bce.ProfileNotFound):
        return f"{exc} (profiles live in ~/.aws/config; check the spelling of --profile / AWS_PROFILE)"
    if isinstance(exc, bce.NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, bce.EndpointConnectionError):
        return f"cannot reach AWS: {exc} (check the region and the network)"
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        operation = getattr(exc, "operation_name", "the AWS call")
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            hint = "the credentials in use lack this permission"
        elif code in {
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
        }:
            hint = "the credentials are expired or invalid: log in again"
        elif "Throttl" in code or code in {"RequestLimitExceeded", "TooManyRequestsException"}:
            hint = "AWS throttled the request: wait a minute and retry"
        elif "NotFound" in code or code in {"NoSuchKey", "NoSuchBucket", "404"}:
            hint = "it does not exist (check the name, the stage and the region)"
        else:
            hint = ""
        return f"AWS {operation}: {code}: {message}" + (f" ({hint})" if hint else "")
    if isinstance(exc, bce.BotoCoreError):
        return f"AWS: {exc}"
    return None


def command(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's ``main(argv)``: our errors, AWS errors and bad paths become one ``error:`` line."""

    @functools.wraps(main)
    def wrapped(*args: Any, **kwargs: Any) -> int:
        try:
            return int(main(*args, **kwargs))
        except CheckFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        except OperatorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:
            message = aws_error_message(exc)
            if message is None and isinstance(exc, ValueError) and _is_domain_error(exc):
                message = str(exc)
            if message is None and isinstance(exc, OSError) and exc.strerror:
                message = f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            return EXIT_ERROR

    return wrapped


def _is_domain_error(exc: ValueError) -> bool:
    """Our own validation errors (contracts, stage config, ...) carry a message written for people."""
    module = type(exc).__module__
    return module.startswith(("app.", "infra.", "scripts."))


def aws_session(*, profile: str | None = None, region: str | None = None) -> Any:
    """A boto3 session; an unknown profile is an OperatorError naming it (boto3 raises at construction)."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise OperatorError(aws_error_message(exc) or str(exc)) from None


def stack_outputs(cloudformation: Any, stack_name: str, *, required: Sequence[str] = ()) -> dict[str, str]:
    """Outputs of a deployed stack as {key: value}; a missing, failed or outdated stack is an OperatorError."""
    from botocore.exceptions import ClientError

    try:
        [described] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        if "does not exist" in message:
            raise OperatorError(
                f"stack {stack_name} does not exist in this account/region: deploy it first "
                f"(npx cdk deploy '{stack_name.replace('-', '/', 1)}')"
            ) from None
        raise
    status = described.get("StackStatus", "")
    if status in _FAILED_STATUSES:
        raise OperatorError(
            f"stack {stack_name}: its last deploy failed ({status}); "
            f"see its events in the CloudFormation console, fix the cause and deploy again"
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [key for key in required if key not in outputs]
    if missing:
        raise OperatorError(
            f"stack {stack_name} ({status}) has no output {', '.join(missing)}: "
            f"deploy the current version of the stage first"
        )
    return outputs


# ---- argparse types: reject bad values at parse time, before any work ----


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a{'n integer' if kind is int else ' number'}"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def output_file(text: str) -> Path:
    """A file the command will write: its folder must exist and the path must not be a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {parent} does not exist (create it first)")
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def directory_or_new(text: str) -> Path:
    """A folder the command will write into: it may exist (as a folder) or be created."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return path
