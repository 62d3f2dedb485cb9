"""The invocation contract's content-type and Accept table, against the live server (a real process).

Every image content type we accept answers 200 with the contract body; a type we do not is 415. The answer is JSON,
so ``Accept`` must allow application/json (or ``*/*``, ``application/*``; absent means anything): otherwise a JSON 406.
"""

from __future__ import annotations

import httpx
import pytest

from tests.app.serving.samples import generated_image, ultralytics_asset
from tests.app.serving.server_process import LiveServer

JPEG = ultralytics_asset("bus.jpg")
BODIES = {
    "image/jpeg": JPEG,
    "image/jpg": JPEG,
    "image/png": generated_image(fmt="PNG"),
    "image/webp": generated_image(fmt="WEBP"),
    "application/x-image": JPEG,
    "application/octet-stream": JPEG,
}


def _post(server: LiveServer, content_type: str, body: bytes, accept: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return httpx.post(f"{server.url}/invocations", content=body, headers=headers, timeout=30)


@pytest.mark.parametrize("content_type", list(BODIES))
def test_accepted_image_content_type_answers_200(live_server: LiveServer, content_type: str) -> None:
    response = _post(live_server, content_type, BODIES[content_type])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.json()["predictions"]) == 1


@pytest.mark.parametrize("content_type", ["text/plain", "image/gif", "image/tiff"])
def test_other_content_type_is_415(live_server: LiveServer, content_type: str) -> None:
    response = _post(live_server, content_type, JPEG)
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/*",
        "application/json; charset=utf-8",
        "text/html, application/json;q=0.5",
        "image/png, */*;q=0.1",
    ],
)
def test_accept_that_allows_json_answers_200(live_server: LiveServer, accept: str | None) -> None:
    assert _post(live_server, "image/jpeg", JPEG, accept).status_code == 200


@pytest.mark.parametrize("accept", ["image/png", "text/csv", "application/xml", "application/json;q=0"])
def test_accept_that_refuses_json_is_a_json_406(live_server: LiveServer, accept: str) -> None:
    response = _post(live_server, "image/jpeg", JPEG, accept)
    assert response.status_code == 406
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "not_acceptable" and "application/json" in error["message"]
