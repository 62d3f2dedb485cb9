"""A step's process environment: variables set for the step and restored after it (credentials, entrypoint paths)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards; boto3's default session is dropped on the way in and
    out, so the clients a step makes read the credentials in force."""
    import boto3

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        boto3.DEFAULT_SESSION = None
