"""Starlette application: ``GET /ping``, ``POST /invocations``, ``GET /openapi.json``, ``GET /execution-parameters``.

The routes read requests and write answers; the inference itself is InferenceService.invoke, run on the service's
pool. Errors go through exception handlers: a ServingError becomes the contract's error body and status
(``Retry-After`` when overloaded), Starlette's 404 and 405 the same shape. RequestLog, a small ASGI middleware, gives
every request an id (``X-Request-Id`` in, or a new one; echoed on invocations and errors), writes one JSON log line
per invocation with its status and latency, and answers anything else that escapes as a bug: 500 with the trace in
the log, and the worker keeps serving.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.contracts.invocation import CUSTOM_ATTRIBUTES_HEADER
from app.serving import payload
from app.serving.errors import BadRequest, NotReady, Overloaded, ServingError
from app.serving.model import Detector
from app.serving.openapi import document
from app.serving.service import InferenceService
from app.serving.settings import ServingSettings

log = logging.getLogger("app.serving.app")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _error_response(code: str, status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


async def serving_error(request: Request, exc: Exception) -> Response:
    """The client's problem (or load): the contract's body and status, and the outcome for the log line."""
    assert isinstance(exc, ServingError)
    request.state.log_fields.update(status=exc.status, code=exc.code, error=exc.message)
    response = _error_response(exc.code, exc.status, exc.message)
    if isinstance(exc, Overloaded):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    response = _error_response(code, exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
    response.headers.update(exc.headers or {})  # a 405 names the allowed methods (Allow, RFC 9110 15.5.6)
    return response


class RequestLog:
    """Request id, the log line and the 500 for a bug, around every HTTP request.

    An endpoint that wants its one JSON line per request names it in ``request.state.log_as`` and adds its fields
    to ``request.state.log_fields`` (the id and path are there already); this writes them with the status and the
    latency once the answer is sent. Anything but a ServingError or HTTPException that escapes is a bug: the trace
    goes to the log and the client gets the contract's 500 body. That is done here rather than by an exception
    handler for Exception, because Starlette runs that one in its ServerErrorMiddleware, which re-raises after
    answering (uvicorn then logs the trace again, and test clients raise).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        request = Request(scope)
        request_id = _request_id(request)
        state = request.state
        state.log_as = None
        fields: dict[str, Any] = {"request_id": request_id, "path": scope["path"]}
        state.log_fields = fields
        sent_status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal sent_status
            if message["type"] == "http.response.start":
                sent_status = message["status"]
                # echoed on the answers a caller may quote (invocations, errors); /ping's 200 stays bare
                if state.log_as or sent_status >= 400:
                    MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            fields.update(status=500, code="internal_error")
            fields["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
            log.exception(f"{state.log_as or 'request'} failed (bug)", extra={"fields": fields})
            if sent_status is None:
                message = f"internal error; see the logs for request {request_id}"
                await _error_response("internal_error", 500, message)(scope, receive, send_with_id)
            return
        if state.log_as:
            fields.setdefault("status", sent_status)
            fields["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
            log.info(state.log_as, extra={"fields": fields})


def create_app(detector: Detector, settings: ServingSettings) -> Starlette:
    service = InferenceService(detector, settings)
    openapi_doc = document(settings.max_images)
    execution_parameters = {
        "MaxConcurrentTransforms": settings.workers * settings.threads,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": max(1, settings.max_body_bytes // (1024 * 1024)),
    }

    async def invocations(request: Request) -> Response:
        deadline = time.monotonic() + settings.deadline_s
        request.state.log_as = "invocation"
        fields = request.state.log_fields
        fields["content_type"] = request.headers.get("content-type")
        payload.check_accept(request.headers.get("accept"))
        kind = payload.media_type(request.headers.get("content-type"))
        header_options = payload.custom_attributes(request.headers.get(CUSTOM_ATTRIBUTES_HEADER))
        try:
            body = await payload.read_body(
                request.headers.get("content-length"), request.stream(), settings.max_body_bytes
            )
        except ClientDisconnect:  # the client's doing, not a bug: no trace, nobody to answer
            raise BadRequest("the client disconnected before sending the whole body") from None
        fields["bytes"] = len(body)
        result = await service.run(partial(service.invoke, body, kind, header_options), deadline)
        fields.update(
            status=200,
            images=len(result["predictions"]),
            detections=sum(len(p["detections"]) for p in result["predictions"]),
        )
        return JSONResponse(result)

    async def ping(request: Request) -> Response:
        if not service.ready:
            raise NotReady("the model is not loaded and warmed up yet")
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc)

    async def parameters(request: Request) -> Response:
        return JSONResponse(execution_parameters)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            service.stop()
            log.info("stopped")

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/execution-parameters", parameters, methods=["GET"]),
        ],
        middleware=[Middleware(RequestLog)],
        exception_handlers={ServingError: serving_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def app_from_env() -> Starlette:
    """Factory for multi-worker mode: each worker process loads its own session from the environment."""
    from app.serving import logs

    settings = ServingSettings()
    logs.configure(settings.log_level)
    return create_app(
        Detector.load(
            settings.model_dir,
            device=settings.device,
            threads=settings.ort_threads,
            precision=settings.precision,
            spinning=settings.spinning,
        ),
        settings,
    )
