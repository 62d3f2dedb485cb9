"""``/invocations`` request -> images + options, per app.contracts.invocation.

The body is read with a hard limit (413 as soon as ``Content-Length`` or the bytes read so far exceed it, without
reading the rest). Options merge, later wins: server defaults (``SERVING_CONF`` ...), then the
``X-Amzn-SageMaker-Custom-Attributes`` header (``conf=0.3,iou=0.5``; keys other than ours are ignored, as SageMaker
treats the header as opaque), then the JSON body. Every error names the field and what was expected.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.contracts.invocation import JSON_TYPE, RAW_IMAGE_TYPES, InferenceOptions
from app.serving.errors import (
    BadImage,
    BadOption,
    BadRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)

# boto3's invoke_endpoint sends application/octet-stream when the caller gives no ContentType.
RAW_TYPES: frozenset[str] = frozenset({*RAW_IMAGE_TYPES, "application/octet-stream"})
OPTION_NAMES: frozenset[str] = frozenset(InferenceOptions.model_fields)
JSON_KEYS: frozenset[str] = frozenset({"image", "images"}) | OPTION_NAMES


@dataclass(frozen=True, slots=True)
class Payload:
    images: list[bytes]
    body_options: dict[str, Any]
    names: list[str]  # how errors refer to each image: "image" or "images[i]"


def media_type(content_type: str | None) -> str:
    """``image/jpeg; charset=x`` -> ``image/jpeg``; 415 for anything we do not accept."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in RAW_TYPES and kind != JSON_TYPE:
        shown = kind or "(none)"
        raise UnsupportedMediaType(
            f"Content-Type {shown} is not supported; expected one of {', '.join(sorted(RAW_TYPES))} or {JSON_TYPE}"
        )
    return kind


def _accepted_range(part: str) -> str | None:
    """``application/json;q=0.5`` -> ``application/json``; None when its ``q`` is 0 (explicitly not acceptable)."""
    kind, *params = (p.strip() for p in part.split(";"))
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                if float(value) <= 0:
                    return None
            except ValueError:
                return None
    return kind.lower()


def check_accept(accept: str | None) -> None:
    """Answers are JSON: an absent ``Accept`` is fine; else it must allow application/json (or */*, application/*)."""
    if accept is None or not accept.strip():
        return
    ranges = {_accepted_range(part) for part in accept.split(",") if part.strip()}
    if ranges & {JSON_TYPE, "application/*", "*/*"}:
        return
    raise NotAcceptable(
        f"Accept '{accept[:200]}' does not allow {JSON_TYPE}; responses are JSON: send Accept {JSON_TYPE} or */*"
    )


def custom_attributes(header: str | None) -> dict[str, str]:
    """``conf=0.3,iou=0.5`` (``;`` also separates) -> our option keys only; 400 for a malformed pair of ours."""
    found: dict[str, str] = {}
    for part in (header or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if key in OPTION_NAMES:
            if not sep or not value.strip():
                raise BadOption(
                    f"X-Amzn-SageMaker-Custom-Attributes: '{part.strip()}'; expected {key}=<number>"
                )
            found[key] = value.strip()
    return found


def options(
    defaults: InferenceOptions, header: Mapping[str, str], body: Mapping[str, Any]
) -> InferenceOptions:
    """Merge defaults < header < body and validate; 400 bad_option naming the field, source and the range."""
    merged: dict[str, Any] = defaults.model_dump()
    for source, values in (("X-Amzn-SageMaker-Custom-Attributes", header), ("JSON body", body)):
        merged.update(values)
        try:
            InferenceOptions.model_validate(merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(p) for p in err["loc"])
            raise BadOption(f"{source}: option '{name}'={merged.get(name)!r}: {err['msg']}") from None
    return InferenceOptions.model_validate(merged)


async def read_body(content_length: str | None, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """Read the body, refusing (413) as soon as it is known to exceed ``limit``, without reading the rest."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest(f"Content-Length '{content_length}' is not an integer") from None
        if declared > limit:
            raise PayloadTooLarge(
                f"body is {declared} bytes; the limit is {limit} bytes (SERVING_MAX_BODY_BYTES)"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes (SERVING_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise BadImage(f"{where}: expected a base64 string, got {type(value).__name__}")
    if value.startswith("data:"):  # data URL: data:image/jpeg;base64,<data>
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadImage(f"{where}: not valid base64") from None


def parse(kind: str, body: bytes, max_images: int) -> Payload:
    """Raw image bytes -> one image; JSON -> ``image`` or ``images`` (base64) plus body options."""
    if kind in RAW_TYPES:
        return Payload([body], {}, ["image"])
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f'body is not valid JSON ({exc}); expected {{"image": "<base64>"}}') from None
    if not isinstance(doc, dict):
        raise BadRequest(f"JSON body is a {type(doc).__name__}; expected an object with 'image' or 'images'")
    unknown = sorted(set(doc) - JSON_KEYS)
    if unknown:
        raise BadRequest(
            f"JSON body: unknown field(s) {unknown}; expected 'image' or 'images' and {sorted(OPTION_NAMES)}"
        )
    if ("image" in doc) == ("images" in doc):
        raise BadRequest(
            "JSON body: expected exactly one of 'image' (base64 string) and 'images' (list of them)"
        )
    if "image" in doc:
        images, names = [_b64(doc["image"], "image")], ["image"]
    else:
        items = doc["images"]
        if not isinstance(items, list) or not items:
            raise BadRequest("JSON body: 'images' must be a non-empty list of base64 strings")
        if len(items) > max_images:
            raise BadRequest(
                f"JSON body: {len(items)} images; at most {max_images} per request (SERVING_MAX_IMAGES)"
            )
        names = [f"images[{i}]" for i in range(len(items))]
        images = [_b64(item, name) for item, name in zip(items, names, strict=True)]
    return Payload(images, {k: v for k, v in doc.items() if k in OPTION_NAMES}, names)
