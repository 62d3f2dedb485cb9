"""One way for every operator command to fail: a one-line ``error: ...`` naming what to fix, and documented exit codes.

Every command under ``scripts/`` wraps its ``main`` with :func:`command` and validates its arguments with the
argparse types below *before* any work starts (a plot or JSON destination is checked before a ten-minute load test,
not after). AWS errors (no credentials, unknown profile, access denied, throttling, not found) and our own domain
errors become one line on stderr; only a bug prints a traceback. The AWS side every command shares (sessions,
stack outputs) is scripts/lib/aws.py; working folders a command may clear, scripts/lib/folders.py.
The README section "Operator commands: how they fail" repeats this table for operators.

Exit codes (the same for every command):
    0  success
    1  error: the command could not do its work (bad input found after parsing, AWS error, missing stack, ...)
    2  usage: the command line was rejected (one line too: :class:`ArgumentParser`)
    3  check failed: the command ran and its verdict is "no" (a verification, a failed job, no sustainable load
       step, synth findings)
    130 interrupted (Ctrl-C)

Ctrl-C: one ``error: interrupted`` line and exit 130, whenever it comes (:func:`quiet_ctrl_c`, installed by
scripts/__init__.py for ``python -m scripts.X`` before any import, and by :func:`command` for a command run as a
path). A terminal's Ctrl-C reaches the whole process group: the CDK's node process and a command's child processes
stop too and would print their own errors (a broken jsii pipe, a child's traceback), so stderr goes quiet at the first
Ctrl-C; the command still unwinds (its ``finally`` blocks stop servers and children) and the one line goes to the
real stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import signal
import sys
import threading
import urllib.error
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_INTERRUPTED = 130


class OperatorError(RuntimeError):
    """Something the operator must fix; printed as one ``error:`` line without a traceback."""


class CheckFailed(OperatorError):
    """The command ran and its verdict is "no" (exit code 3)."""


def last_lines(text: str, count: int) -> str:
    """The last ``count`` lines of a process's output, indented and marked, for an error message that quotes them."""
    return "\n".join(f"    | {line}" for line in text.splitlines()[-count:])


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
    """Wrap a command's ``main(argv)``: our errors, AWS errors and bad paths become one ``error:`` line; Ctrl-C one
    ``error: interrupted`` line and exit 130 (the KeyboardInterrupt's text, if any, says where it stopped)."""
    # run as a path (python scripts/x.py), scripts/__init__.py did not install it before the imports
    if main.__module__ == "__main__":
        quiet_ctrl_c()

    @functools.wraps(main)
    def wrapped(*args: Any, **kwargs: Any) -> int:
        try:
            code = int(main(*args, **kwargs))
        except KeyboardInterrupt as exc:
            return _interrupted(str(exc))
        except CheckFailed as exc:
            return _interrupted() if _ctrl_c_seen() else _fail(str(exc), EXIT_CHECK_FAILED)
        except OperatorError as exc:
            return _interrupted() if _ctrl_c_seen() else _fail(str(exc), EXIT_ERROR)
        except Exception as exc:
            # a child (the CDK's node process, a step's process) died of the same Ctrl-C first
            if _ctrl_c_seen():
                return _interrupted()
            message = aws_error_message(exc)
            if message is None and isinstance(exc, ValueError) and _is_domain_error(exc):
                message = str(exc)
            if message is None and isinstance(exc, urllib.error.URLError):
                message = f"network: {exc.reason} ({getattr(exc, 'url', None) or 'a download'})"
            if message is None and isinstance(exc, OSError) and exc.strerror:
                message = f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
            if message is None:
                raise
            return _fail(message, EXIT_ERROR)
        return _interrupted() if _ctrl_c_seen() else code

    return wrapped


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# ---- Ctrl-C ----

_real_stderr: int | None = None  # set at the first Ctrl-C: the process's stderr, before it went quiet


def quiet_ctrl_c() -> None:
    """From now on in this process, Ctrl-C prints one line and exits 130 (see the module docstring)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_ctrl_c)
        sys.excepthook = _uncaught


def _ctrl_c_seen() -> bool:
    return _real_stderr is not None


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    global _real_stderr
    if _real_stderr is None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        _real_stderr = os.dup(2)
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 2)
        os.close(quiet)
    raise KeyboardInterrupt


def _interrupted(detail: str = "") -> int:
    """Write the one line to the real stderr; EXIT_INTERRUPTED."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    line = "error: interrupted (Ctrl-C)" + (f" {detail}" if detail else "")
    if _real_stderr is None:  # a KeyboardInterrupt raised in-process, no signal: stderr is as it was
        print(line, file=sys.stderr)
    else:
        os.write(_real_stderr, f"{line}\n".encode())
    return EXIT_INTERRUPTED


def _uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """sys.excepthook: a Ctrl-C outside :func:`command` (while a command's modules load) is one line and 130 too."""
    if not issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    _interrupted()
    # left to Python, the process would die of a re-raised SIGINT: a shell shows 130, a parent process -2
    os._exit(EXIT_INTERRUPTED)


def _is_domain_error(exc: ValueError) -> bool:
    """Our own validation errors (contracts, stage config, ...) carry a message written for people."""
    module = type(exc).__module__
    return module.startswith(("app.", "infra.", "scripts."))


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the one-line usage error of every operator command: ``error: <prog>: <reason> (see --help)``,
    exit 2 (subcommand parsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


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


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return path


def directory_or_new(text: str) -> Path:
    """A folder the command will write into: it may exist (as a folder) or be created."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return path


def fraction(text: str) -> float:
    """A number in (0, 1], e.g. a safety factor."""
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def stage_name(text: str) -> str:
    """A stage of infra/stages.py, any case (``dev`` -> ``Dev``): a typo fails here, not as a missing stack."""
    from infra.stages import STAGES  # plain data: no aws_cdk import

    names = {name.lower(): name for name in STAGES}
    if text.lower() not in names:
        raise argparse.ArgumentTypeError(
            f"unknown stage '{text}'; expected one of {', '.join(STAGES)} (infra/stages.py)"
        )
    return names[text.lower()]


def s3_uri(text: str) -> str:
    """``s3://<bucket>/<key or prefix>`` (bucket and key both present), parsed strictly by the one S3 URI parser
    (app/contracts/storage.py: ``s3:/b/k``, ``S3://``, a bucket name S3 would refuse are errors)."""
    from app.contracts.storage import S3Uri, S3UriError

    try:
        S3Uri.parse(text, key_required=True)
    except S3UriError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def http_url(text: str) -> str:
    """``http(s)://host[:port]`` with a host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number or out of range
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"'{text}' is not a URL; expected http://HOST:PORT")
    return text
