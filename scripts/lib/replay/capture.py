"""A SageMaker endpoint's data capture, newest request first, as (content type, body) pairs ready to replay.

Where and what (SageMaker Developer Guide, "Capture data from real-time endpoint", View Captured Data,
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html, read 2026-12-05): objects
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl``, one JSON record a line::

    {"captureData": {"endpointInput": {"observedContentType": "image/jpeg", "mode": "INPUT",
                                       "data": "<body>", "encoding": "BASE64"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-12-05T10:30:45Z"},
     "eventVersion": "0"}

``encoding`` is ``BASE64`` unless the content type is one the endpoint config lists as JSON or CSV
(CaptureContentTypeHeader: "If no headers are specified SageMaker AI will by default base64 encode when capturing
the data", SageMaker API Reference, DataCaptureConfig,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html): then ``data`` is the body as
text. Our endpoints list ``application/json`` as JSON (infra/constructs/endpoint.py). ``inferenceId`` is there when
the caller sent one; the platform's own requests carry a ``synthetic-`` one (app/contracts/invocation.py).

Bounded: the date folders are walked newest first with S3's ``Delimiter`` listing (never the whole prefix), files
are streamed line by line and at most ``limit`` requests are held. A capture on disk (``aws s3 sync`` of
``<DestinationS3Uri>/<endpoint>/``, or the demo's, which :func:`capture_line` writes in the same format) is read the
same way (:func:`local_files`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.contracts.invocation import is_synthetic

DATE_LEVELS = 4  # yyyy/mm/dd/hh under <endpoint>/<variant>/
_LINE_CHUNK = 1024 * 1024

# A capture file: where it is (for the report) and how to stream its lines.
CaptureFile = tuple[str, Callable[[], Iterable[bytes]]]


@dataclass(frozen=True)
class CapturedRequest:
    """One captured request: where it is (``s3://bucket/key:line``), its ids, and the body as the endpoint got it."""

    where: str
    event_id: str
    inference_id: str
    inference_time: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Unreadable:
    """A capture line that is not a request we can replay, and why (named in the report, never fatal)."""

    where: str
    event_id: str
    why: str


@dataclass(frozen=True)
class _Synthetic:
    where: str


Entry = CapturedRequest | Unreadable | _Synthetic


class CaptureProblem(ValueError):
    pass


def _field(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CaptureProblem(f"field '{path}': missing; expected a SageMaker data capture record")
        node = node[part]
    return node


def _body(endpoint_input: dict[str, Any]) -> bytes:
    data, encoding = endpoint_input.get("data"), endpoint_input.get("encoding")
    if encoding == "BASE64":
        if not isinstance(data, str):
            raise CaptureProblem("field 'captureData.endpointInput.data': expected a base64 string")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise CaptureProblem("field 'captureData.endpointInput.data': not valid base64") from None
    if encoding in ("JSON", "CSV"):
        return (data if isinstance(data, str) else json.dumps(data)).encode()
    raise CaptureProblem(
        f"field 'captureData.endpointInput.encoding': expected BASE64, JSON or CSV, got {encoding!r}"
    )


def parse_line(line: bytes | str, where: str) -> Entry:
    """One JSONL line -> a request, a synthetic marker, or Unreadable naming the field."""
    event_id = ""
    try:
        doc = json.loads(line)
        metadata = _field(doc, "eventMetadata")
        event_id = str(metadata.get("eventId", "")) if isinstance(metadata, dict) else ""
        inference_id = str(metadata.get("inferenceId") or "") if isinstance(metadata, dict) else ""
        if is_synthetic(inference_id):
            return _Synthetic(where)
        endpoint_input = _field(doc, "captureData.endpointInput")
        if endpoint_input.get("mode", "INPUT") != "INPUT":
            raise CaptureProblem("field 'captureData.endpointInput.mode': expected INPUT")
        return CapturedRequest(
            where=where,
            event_id=event_id,
            inference_id=inference_id,
            inference_time=str(metadata.get("inferenceTime", "")),
            content_type=str(endpoint_input.get("observedContentType", "")),
            body=_body(endpoint_input),
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Unreadable(where, event_id, f"not a JSON record ({exc.__class__.__name__}: {exc})")
    except CaptureProblem as exc:
        return Unreadable(where, event_id, str(exc))


def newest_lines(lines: Iterable[bytes], where: str, limit: int) -> list[Entry]:
    """The entries of one file, newest (last) first, holding at most ``limit`` non-synthetic ones while streaming."""
    kept: deque[Entry] = deque()
    real = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = parse_line(line, f"{where}:{number}")
        kept.append(entry)
        real += not isinstance(entry, _Synthetic)
        while real > limit:
            real -= not isinstance(kept.popleft(), _Synthetic)
        while kept and isinstance(kept[0], _Synthetic) and real == limit:
            kept.popleft()  # older than the window that is kept: not part of this replay
    return list(reversed(kept))


def _children(s3: Any, bucket: str, prefix: str) -> list[str]:
    names: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        names.extend(p["Prefix"][len(prefix) :] for p in page.get("CommonPrefixes", []))
    return names


def capture_files(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Keys of the ``.jsonl`` files under ``prefix`` (``<capture prefix>/<endpoint>/``), newest first, every
    variant together: the yyyy/mm/dd/hh folders are walked from the newest, one level at a time."""

    def walk(bases: list[str], depth: int) -> Iterator[str]:
        if depth == 0:
            keys: list[tuple[str, str]] = []
            for base in bases:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
                    keys.extend(
                        (o["Key"].rsplit("/", 1)[-1], o["Key"])
                        for o in page.get("Contents", [])
                        if o["Key"].endswith(".jsonl")
                    )
            yield from (key for _, key in sorted(keys, reverse=True))
            return
        found: dict[str, list[str]] = {}
        for base in bases:
            for name in _children(s3, bucket, base):
                found.setdefault(name, []).append(base + name)
        for name in sorted(found, reverse=True):
            yield from walk(found[name], depth - 1)

    variants = [prefix + name for name in _children(s3, bucket, prefix)]
    yield from walk(variants, DATE_LEVELS)


def s3_files(s3: Any, bucket: str, prefix: str) -> Iterator[CaptureFile]:
    """The capture files of an endpoint in S3, newest first (:func:`capture_files`)."""

    def lines(key: str) -> Callable[[], Iterable[bytes]]:
        # 1 MiB chunks: a captured image is one line of up to ~8 MB of base64, and iter_lines joins chunks per line
        return lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines(chunk_size=_LINE_CHUNK)

    for key in capture_files(s3, bucket, prefix):
        yield f"s3://{bucket}/{key}", lines(key)


def local_files(folder: Path) -> Iterator[CaptureFile]:
    """The ``.jsonl`` files of a capture on disk (``<variant>/yyyy/mm/dd/hh/<name>.jsonl`` below ``folder``), newest
    first by their date folders and name, every variant together - the order :func:`capture_files` walks S3 in."""

    def lines(path: Path) -> Callable[[], Iterable[bytes]]:
        def stream() -> Iterator[bytes]:
            with path.open("rb") as handle:  # streamed, as the S3 files are
                yield from handle

        return stream

    paths = sorted(folder.rglob("*.jsonl"), key=lambda p: p.relative_to(folder).parts[-1 - DATE_LEVELS :])
    for path in reversed(paths):
        yield str(path), lines(path)


def capture_line(
    body: bytes, content_type: str, *, event_id: str, inference_time: str, inference_id: str | None = None
) -> str:
    """One request as SageMaker data capture records it (the format in the module docstring; a JSON body as JSON,
    anything else base64), for a capture written outside SageMaker (the demo's requests to its local server)."""
    as_json = content_type.split(";")[0].strip() == "application/json"
    metadata = {"eventId": event_id, "inferenceTime": inference_time}
    if inference_id:
        metadata["inferenceId"] = inference_id
    endpoint_input = {
        "observedContentType": content_type,
        "mode": "INPUT",
        "data": body.decode() if as_json else base64.b64encode(body).decode(),
        "encoding": "JSON" if as_json else "BASE64",
    }
    return json.dumps(
        {"captureData": {"endpointInput": endpoint_input}, "eventMetadata": metadata, "eventVersion": "0"}
    )


@dataclass
class CaptureRead:
    """What was read: files, synthetic requests skipped, and (while iterating) the entries."""

    files: list[str]
    synthetic: int = 0


def newest_requests(
    files: Iterable[CaptureFile], limit: int, read: CaptureRead
) -> Iterator[CapturedRequest | Unreadable]:
    """The last ``limit`` captured requests of ``files`` (newest first) that are not synthetic (undecodable lines
    count among them), newest first; ``read`` is filled with the files opened and the synthetic requests skipped."""
    remaining = limit
    for where, open_lines in files:
        if remaining <= 0:
            return
        read.files.append(where)
        for entry in newest_lines(open_lines(), where, remaining):
            if isinstance(entry, _Synthetic):
                read.synthetic += 1
                continue
            remaining -= 1
            yield entry
