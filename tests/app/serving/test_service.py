"""The data plane without HTTP: ``InferenceService.invoke`` on the session's trained artifact (a real Detector).

One request's body, media type, header options and deadline in; the contract's response document or the
ServingError that says what was wrong out. No server, no event loop: the method runs on the calling thread.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.contracts.invocation import InvocationResponse
from app.serving.errors import BadImage, BadOption, BadRequest, DeadlineExceeded, ServingError
from app.serving.model import Detector
from app.serving.service import InferenceService
from app.serving.settings import ServingSettings
from tests.app.serving.samples import image_size


@pytest.fixture()
def service(detector: Detector) -> Iterator[InferenceService]:
    service = InferenceService(detector, ServingSettings(max_images=4))
    yield service
    service.stop()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _soon() -> float:
    return time.monotonic() + 60


def test_a_raw_photo_gets_the_contract_document_with_the_model_and_its_size(
    service: InferenceService, detector: Detector, photos: dict[str, bytes]
) -> None:
    result = service.invoke(photos["bus.jpg"], "image/jpeg", {"conf": "0.001"}, _soon())
    doc = InvocationResponse.model_validate(result)
    assert (doc.model.name, doc.model.version) == (detector.card.name, detector.card.version)
    assert [(p.image.width, p.image.height) for p in doc.predictions] == [image_size(photos["bus.jpg"])]
    assert doc.predictions[0].detections, "conf=0.001 should leave some detections"
    assert all(d.label == detector.class_names[d.class_id] for d in doc.predictions[0].detections)


def test_a_json_batch_is_answered_image_by_image_in_order(
    service: InferenceService, photos: dict[str, bytes]
) -> None:
    names = ["zidane.jpg", "generated.png", "bus.jpg"]
    body = _json({"images": [_b64(photos[n]) for n in names]})
    doc = InvocationResponse.model_validate(service.invoke(body, "application/json", {}, _soon()))
    sizes = [(p.image.width, p.image.height) for p in doc.predictions]
    assert sizes == [image_size(photos[n]) for n in names]


def test_body_options_win_over_header_options(service: InferenceService, photos: dict[str, bytes]) -> None:
    def found(body_options: dict[str, Any]) -> list[float]:
        body = _json({"image": _b64(photos["bus.jpg"]), **body_options})
        result = service.invoke(body, "application/json", {"conf": "0.99", "max_det": "300"}, _soon())
        return [d["confidence"] for d in result["predictions"][0]["detections"]]

    assert all(c >= 0.99 for c in found({}))  # the header's conf applies when the body has none
    low = found({"conf": 0.001})
    assert low and min(low) < 0.99


def test_a_request_already_past_its_deadline_is_refused_before_any_image(
    service: InferenceService, photos: dict[str, bytes]
) -> None:
    body = _json({"images": [_b64(photos["bus.jpg"])] * 3})
    with pytest.raises(DeadlineExceeded, match="after 0 of 3 images") as caught:
        service.invoke(body, "application/json", {}, time.monotonic() - 1)
    assert caught.value.status == 504


def test_a_batch_that_runs_past_its_deadline_raises_instead_of_answering_part(
    detector: Detector, photos: dict[str, bytes]
) -> None:
    """16 photos take well over 50 ms on a CPU: the per-image check stops the batch; no partial document."""
    service = InferenceService(detector, ServingSettings(deadline_s=0.05))
    try:
        body = _json({"images": [_b64(photos["bus.jpg"])] * 16})
        with pytest.raises(DeadlineExceeded, match=r"the deadline of 0.05 s passed after \d+ of 16 images"):
            service.invoke(body, "application/json", {}, time.monotonic() + 0.05)
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("kind", "body", "error", "names"),
    [
        ("application/json", b'{"image": ', BadRequest, "not valid JSON"),
        ("application/json", b'{"picture": "x"}', BadRequest, "unknown field(s) ['picture']"),
        ("application/json", _json({"images": ["eA=="] * 5}), BadRequest, "SERVING_MAX_IMAGES"),
        ("application/json", _json({"images": [_b64(b"ok"), "not base64!"]}), BadImage, "images[1]"),
        ("application/json", _json({"image": "aGVsbG8=", "conf": 2}), BadOption, "JSON body: option 'conf'"),
        ("image/png", b"GIF89a garbage", BadImage, "not a readable image"),
        ("image/jpeg", b"", BadImage, "empty"),
    ],
)
def test_a_bad_payload_raises_the_error_that_names_it(
    service: InferenceService, kind: str, body: bytes, error: type[ServingError], names: str
) -> None:
    with pytest.raises(error) as caught:
        service.invoke(body, kind, {}, _soon())
    assert names in caught.value.message and caught.value.status == 400


def test_a_bad_header_option_names_the_header(service: InferenceService, photos: dict[str, bytes]) -> None:
    with pytest.raises(BadOption, match="X-Amzn-SageMaker-Custom-Attributes: option 'iou'"):
        service.invoke(photos["bus.jpg"], "image/jpeg", {"iou": "1.5"}, _soon())
