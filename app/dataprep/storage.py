"""Where images come from and where the dataset goes: local folders or S3 (boto3), copied in parallel.

Sources: with ``--image-root DIR`` an ``s3://bucket/key`` source-ref is read from ``DIR/key`` (or
``DIR/bucket/key``); plain paths are taken relative to ``DIR``; without it, S3 refs are read from S3.
S3 -> S3 copies are server-side (boto3's managed ``copy``, multipart for large objects); nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.contracts.storage import S3Uri, S3UriError, looks_like_s3
from app.dataprep.errors import DataprepError


def is_s3(uri: str) -> bool:
    """Meant as S3 (``s3:...``); malformed ones are refused by :func:`split_s3`, never used as local paths."""
    return looks_like_s3(uri)


def split_s3(uri: str) -> tuple[str, str]:
    try:
        loc = S3Uri.parse(uri)
    except S3UriError as exc:
        raise DataprepError(str(exc)) from None
    return loc.bucket, loc.key


def s3_client() -> Any:
    """One boto3 S3 client (thread-safe); AWS_ENDPOINT_URL etc. are honoured by boto3 itself."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(max_pool_connections=32, retries={"mode": "standard"}))


@dataclass(frozen=True)
class ImageRef:
    """A resolved image: a local path or an S3 object."""

    path: Path | None = None
    bucket: str | None = None
    key: str | None = None

    def describe(self) -> str:
        return str(self.path) if self.path else f"s3://{self.bucket}/{self.key}"


class _S3User:
    """Holds the S3 client given, or makes one on first use: a purely local run never creates one."""

    _client: Any

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client


class ImageSource(_S3User):
    """Maps manifest source-refs onto readable images."""

    def __init__(self, image_root: Path | None = None, client: Any = None) -> None:
        self.image_root = image_root
        self._client = client

    def resolve(self, source_ref: str) -> ImageRef:
        if self.image_root is None:
            if is_s3(source_ref):
                bucket, key = split_s3(source_ref)
                return ImageRef(bucket=bucket, key=key)
            return ImageRef(path=Path(source_ref))
        if is_s3(source_ref):
            bucket, key = split_s3(source_ref)
            for candidate in (self.image_root / key, self.image_root / bucket / key):
                if candidate.is_file():
                    return ImageRef(path=candidate)
            return ImageRef(path=self.image_root / key)  # reported as missing when read
        path = Path(source_ref)
        return ImageRef(path=path if path.is_absolute() else self.image_root / path)

    def read_bytes(self, ref: ImageRef, byte_range: str | None = None) -> bytes:
        if ref.path is not None:
            return ref.path.read_bytes()
        extra = {"Range": byte_range} if byte_range else {}
        return bytes(self.client.get_object(Bucket=ref.bucket, Key=ref.key, **extra)["Body"].read())


class Destination(_S3User):
    """A dataset root: a local folder or an ``s3://bucket/prefix``; relative keys use '/'."""

    def __init__(self, uri: str, client: Any = None) -> None:
        self.uri = uri.rstrip("/")
        self.s3 = is_s3(uri)
        self._client = client
        if self.s3:
            self.bucket, prefix = split_s3(self.uri)
            self.prefix = f"{prefix}/" if prefix else ""
        else:
            self.root = Path(uri)

    def location(self, rel: str) -> str:
        return f"{self.uri}/{rel}"

    def read_bytes(self, rel: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        if not self.s3:
            path = self.root / rel
            return path.read_bytes() if path.is_file() else None
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def list_files(self, rel_dir: str) -> list[str]:
        """Relative keys of every file under ``rel_dir`` (sorted; empty when there is none)."""
        if not self.s3:
            base = self.root / rel_dir
            if not base.is_dir():
                return []
            return sorted(str(p.relative_to(self.root).as_posix()) for p in base.rglob("*") if p.is_file())
        start = f"{self.prefix}{rel_dir.rstrip('/')}/"
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
        return sorted(o["Key"][len(self.prefix) :] for page in pages for o in page.get("Contents", []))

    def write_bytes(self, rel: str, data: bytes) -> None:
        if self.s3:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + rel, Body=data)
            return
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: two shards writing the same metadata never leave a torn file

    def copy_image(self, source: ImageSource, ref: ImageRef, rel: str, link: bool = False) -> None:
        """Copy one image; server-side when both ends are S3."""
        if ref.path is not None and not ref.path.is_file():
            raise DataprepError(f"{ref.path}: image not found (check --image-root)")
        if self.s3:
            key = self.prefix + rel
            if ref.path is not None:
                self.client.upload_file(str(ref.path), self.bucket, key)
            else:
                self.client.copy({"Bucket": ref.bucket, "Key": ref.key}, self.bucket, key)
            return
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if ref.path is None:
            source.client.download_file(ref.bucket, ref.key, str(target))
            return
        if link:
            try:
                if target.exists():
                    target.unlink()
                os.link(ref.path, target)
                return
            except OSError:
                pass  # other filesystem: fall back to a copy
        shutil.copyfile(ref.path, target)


def fetch_manifest(uri: str, client: Any = None) -> tuple[Path, Callable[[], None]]:
    """A local path for the label file (downloaded to a temp file when it is on S3) and a cleanup callback."""
    if not is_s3(uri):
        return Path(uri), lambda: None
    bucket, key = split_s3(uri)
    handle, name = tempfile.mkstemp(suffix=".labels")
    os.close(handle)
    try:
        (client or s3_client()).download_file(bucket, key, name)
    except Exception as exc:
        os.unlink(name)
        raise DataprepError(f"{uri}: cannot read the manifest ({exc})") from None
    return Path(name), lambda: os.unlink(name)


def run_parallel(
    tasks: Iterable[Callable[[], None]], *, total: int, workers: int, progress: bool, desc: str
) -> list[str]:
    """Run ``tasks`` on a thread pool with a progress bar; return the error messages (empty when all worked)."""
    errors: list[str] = []

    def guarded(task: Callable[[], None]) -> str | None:
        try:
            task()
        except DataprepError as exc:
            return str(exc)
        except Exception as exc:  # S3/IO errors: collected and reported together, never a bare traceback
            return f"{type(exc).__name__}: {exc}"
        return None

    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar,
    ):
        for message in pool.map(guarded, tasks):
            bar.update(1)
            if message:
                errors.append(message)
    return errors
