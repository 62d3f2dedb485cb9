"""Request parsing: content types, the custom-attributes header, option merging and JSON bodies (plus a fuzz)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.contracts.invocation import InferenceOptions
from app.serving import payload
from app.serving.errors import BadImage, BadOption, BadRequest, ServingError, UnsupportedMediaType

DEFAULTS = InferenceOptions()


def test_media_type_ignores_parameters_and_case() -> None:
    assert payload.media_type("Image/JPEG; charset=binary") == "image/jpeg"


@pytest.mark.parametrize("kind", ["text/plain", None, "image/gif"])
def test_unsupported_content_type_is_415(kind: str | None) -> None:
    with pytest.raises(UnsupportedMediaType, match="expected one of"):
        payload.media_type(kind)


def test_custom_attributes_keep_only_our_options() -> None:
    assert payload.custom_attributes("trace=abc, conf=0.3;iou=0.5") == {"conf": "0.3", "iou": "0.5"}


def test_custom_attribute_without_value_is_bad_option() -> None:
    with pytest.raises(BadOption, match="conf=<number>"):
        payload.custom_attributes("conf=")


def test_body_options_override_header_options() -> None:
    merged = payload.options(DEFAULTS, {"conf": "0.3", "iou": "0.4"}, {"conf": 0.6})
    assert (merged.conf, merged.iou, merged.max_det) == (0.6, 0.4, DEFAULTS.max_det)


@pytest.mark.parametrize(
    "header,body,field",
    [({"conf": "high"}, {}, "conf"), ({}, {"iou": 1.5}, "iou"), ({}, {"max_det": 0}, "max_det")],
)
def test_invalid_option_names_the_field(header: dict[str, str], body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadOption, match=f"option '{field}'"):
        payload.options(DEFAULTS, header, body)


def test_json_images_keep_their_order_and_options() -> None:
    images = [b"one", b"two", b"three"]
    body = json.dumps({"images": [base64.b64encode(i).decode() for i in images], "conf": 0.1}).encode()
    parsed = payload.parse("application/json", body, max_images=8)
    assert parsed.images == images and parsed.names == ["images[0]", "images[1]", "images[2]"]
    assert parsed.body_options == {"conf": 0.1}


def test_json_data_url_is_accepted() -> None:
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(b"png").decode()}).encode()
    assert payload.parse("application/json", body, max_images=1).images == [b"png"]


@pytest.mark.parametrize(
    "body,error,match",
    [
        (b"{not json", BadRequest, "not valid JSON"),
        (b"[1, 2]", BadRequest, "expected an object"),
        (b'{"img": "x"}', BadRequest, "unknown field"),
        (b"{}", BadRequest, "exactly one of"),
        (b'{"images": []}', BadRequest, "non-empty list"),
        (b'{"image": "***"}', BadImage, "image: not valid base64"),
        (b'{"images": ["aGk=", 3]}', BadImage, r"images\[1\]: expected a base64 string"),
    ],
)
def test_bad_json_body_is_400_naming_the_problem(body: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        payload.parse("application/json", body, max_images=8)


def test_too_many_images_is_bad_request() -> None:
    body = json.dumps({"images": ["aGk="] * 3}).encode()
    with pytest.raises(BadRequest, match="at most 2"):
        payload.parse("application/json", body, max_images=2)


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["image", "images", "conf", "iou", "max_det", "x"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(doc=_JSON, header=st.text(max_size=40))
def test_payload_fuzz_raises_only_serving_errors(doc: Any, header: str) -> None:
    try:
        parsed = payload.parse("application/json", json.dumps(doc).encode(), max_images=4)
        payload.options(DEFAULTS, payload.custom_attributes(header), parsed.body_options)
    except ServingError as exc:
        assert exc.status == 400
