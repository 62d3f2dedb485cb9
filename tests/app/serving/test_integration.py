"""The ``serve`` executable as a process on 127.0.0.1 with the session's trained artifact: contract and errors.

Real photos (bus.jpg, zidane.jpg from the ultralytics package) and a generated scene, posted as JPEG, PNG and
base64 JSON. Runtime: ~3 s of server start (shared by the session) plus ~1 s of requests.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from app.contracts.invocation import ErrorResponse, InvocationResponse
from tests.app.serving.samples import image_size
from tests.app.serving.server_process import LiveServer, send_raw

LOW_CONF = {"X-Amzn-SageMaker-Custom-Attributes": "conf=0.001,max_det=50"}


def _png(data: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="PNG")
    return buf.getvalue()


def _post(server: LiveServer, content: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/invocations",
        content=content,
        headers={"Content-Type": content_type, **headers},
        timeout=30,
    )


def _check_contract(
    response: httpx.Response, sizes: list[tuple[int, int]], class_names: list[str]
) -> InvocationResponse:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = InvocationResponse.model_validate(response.json())
    assert [(p.image.width, p.image.height) for p in body.predictions] == sizes
    for prediction in body.predictions:
        confidences = [d.confidence for d in prediction.detections]
        assert confidences == sorted(confidences, reverse=True)
        for det in prediction.detections:
            assert det.label == class_names[det.class_id]
            assert 0 <= det.box.x1 <= det.box.x2 <= prediction.image.width
            assert 0 <= det.box.y1 <= det.box.y2 <= prediction.image.height
    return body


@pytest.fixture(scope="module")
def card(trained_artifact: Any) -> dict[str, Any]:
    return json.loads((trained_artifact / "model.json").read_text())


def test_ping_is_200_json(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/ping")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("name", ["bus.jpg", "zidane.jpg"])
def test_jpeg_photo_gets_contract_response(
    live_server: LiveServer, photos: dict[str, bytes], card: dict[str, Any], name: str
) -> None:
    body = _check_contract(
        _post(live_server, photos[name], "image/jpeg", **LOW_CONF),
        [image_size(photos[name])],
        card["class_names"],
    )
    assert body.model.name == card["name"] and body.model.version == card["version"]
    assert body.predictions[0].detections, "conf=0.001 should leave some detections"


def test_png_photo_gets_contract_response(
    live_server: LiveServer, photos: dict[str, bytes], card: dict[str, Any]
) -> None:
    png = _png(photos["zidane.jpg"])
    _check_contract(_post(live_server, png, "image/png", **LOW_CONF), [image_size(png)], card["class_names"])


def test_generated_png_as_x_image_gets_contract_response(
    live_server: LiveServer, photos: dict[str, bytes], card: dict[str, Any]
) -> None:
    data = photos["generated.png"]
    _check_contract(_post(live_server, data, "application/x-image"), [image_size(data)], card["class_names"])


def test_base64_json_image_with_body_options(
    live_server: LiveServer, photos: dict[str, bytes], card: dict[str, Any]
) -> None:
    doc = {"image": base64.b64encode(photos["bus.jpg"]).decode(), "conf": 0.001, "max_det": 3}
    body = _check_contract(
        _post(live_server, json.dumps(doc).encode(), "application/json"),
        [image_size(photos["bus.jpg"])],
        card["class_names"],
    )
    assert 1 <= len(body.predictions[0].detections) <= 3


def test_batch_of_three_gets_three_answers_in_order(
    live_server: LiveServer, photos: dict[str, bytes], card: dict[str, Any]
) -> None:
    names = ["zidane.jpg", "generated.png", "bus.jpg"]
    doc = {"images": [base64.b64encode(photos[n]).decode() for n in names]}
    _check_contract(
        _post(live_server, json.dumps(doc).encode(), "application/json"),
        [image_size(photos[n]) for n in names],
        card["class_names"],
    )


def test_header_conf_filters_detections(live_server: LiveServer, photos: dict[str, bytes]) -> None:
    def found(conf: float) -> list[float]:
        r = _post(
            live_server,
            photos["bus.jpg"],
            "image/jpeg",
            **{"X-Amzn-SageMaker-Custom-Attributes": f"conf={conf},max_det=300"},
        )
        return [d["confidence"] for d in r.json()["predictions"][0]["detections"]]

    low, high = found(0.001), found(0.01)
    assert len(high) < len(low) and all(c >= 0.01 for c in high)  # confidences are rounded to 4 decimals


def _error(response: httpx.Response, status: int, code: str) -> str:
    """Assert the contract's error shape with this status and code; return the message."""
    assert response.status_code == status, response.text
    body = ErrorResponse.model_validate(response.json())
    assert body.error.code == code
    return body.error.message


def test_undecodable_image_is_400_bad_image(live_server: LiveServer) -> None:
    assert "not a readable image" in _error(
        _post(live_server, b"GIF89a garbage", "image/png"), 400, "bad_image"
    )


def test_empty_image_is_400_bad_image(live_server: LiveServer) -> None:
    assert "empty" in _error(_post(live_server, b"", "image/jpeg"), 400, "bad_image")


def test_bad_image_in_a_batch_names_its_index(live_server: LiveServer, photos: dict[str, bytes]) -> None:
    doc = {"images": [base64.b64encode(photos["bus.jpg"]).decode(), base64.b64encode(b"nope").decode()]}
    assert "images[1]" in _error(
        _post(live_server, json.dumps(doc).encode(), "application/json"), 400, "bad_image"
    )


def test_bad_json_is_400_bad_request(live_server: LiveServer) -> None:
    assert "not valid JSON" in _error(
        _post(live_server, b'{"image": ', "application/json"), 400, "bad_request"
    )


def test_bad_option_is_400_bad_option(live_server: LiveServer, photos: dict[str, bytes]) -> None:
    response = _post(
        live_server, photos["bus.jpg"], "image/jpeg", **{"X-Amzn-SageMaker-Custom-Attributes": "conf=2"}
    )
    assert "option 'conf'" in _error(response, 400, "bad_option")


def test_unsupported_content_type_is_415(live_server: LiveServer) -> None:
    _error(_post(live_server, b"hello", "text/plain"), 415, "unsupported_media_type")


def test_declared_oversized_body_is_413_before_it_is_sent(live_server: LiveServer) -> None:
    """Content-Length says 100 MB; only the headers and 1 KB are sent, and the answer comes anyway."""
    headers = {"Content-Type": "image/jpeg", "Content-Length": "100000000"}
    with send_raw(live_server.url, headers, b"\xff" * 1024, timeout=10) as sock:
        started = time.monotonic()
        answer = _read_response(sock)
    assert answer.startswith("HTTP/1.1 413") and "payload_too_large" in answer
    assert time.monotonic() - started < 5


def _read_response(sock: socket.socket) -> str:
    """Headers and the whole declared body: they may arrive in separate segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode(errors="replace")


def test_streamed_oversized_body_is_413(live_server: LiveServer) -> None:
    def chunks() -> Any:
        for _ in range(8):
            yield b"\0" * (1024 * 1024)

    response = httpx.post(
        f"{live_server.url}/invocations", content=chunks(), headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    assert "limit" in _error(response, 413, "payload_too_large")


def test_every_request_is_logged_as_json_with_id_and_latency(live_server: LiveServer) -> None:
    response = _post(live_server, b"", "image/jpeg", **{"X-Request-Id": "log-check-1"})
    assert response.headers["x-request-id"] == "log-check-1"
    time.sleep(0.2)
    lines = [json.loads(line) for line in live_server.logs().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "log-check-1"]
    assert mine and mine[0]["status"] == 400 and mine[0]["latency_ms"] >= 0 and mine[0]["code"] == "bad_image"


def test_openapi_document_is_served(live_server: LiveServer) -> None:
    doc = httpx.get(f"{live_server.url}/openapi.json").json()
    assert set(doc["paths"]) >= {"/ping", "/invocations"}
    assert set(doc["paths"]["/invocations"]["post"]["responses"]) >= {
        "200",
        "400",
        "413",
        "415",
        "503",
        "504",
    }


def test_client_disconnect_mid_body_is_logged_without_trace(live_server: LiveServer) -> None:
    headers = {"Content-Type": "image/jpeg", "X-Request-Id": "gone-1", "Content-Length": "100000"}
    with send_raw(live_server.url, headers, b"\xff" * 1000, timeout=10):
        time.sleep(0.2)
    assert httpx.get(f"{live_server.url}/ping").status_code == 200
    time.sleep(0.3)
    mine = [json.loads(line) for line in live_server.logs().splitlines() if '"gone-1"' in line]
    assert mine and mine[0]["code"] == "bad_request" and "exc" not in mine[0]
