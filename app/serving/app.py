"""Starlette application: ``GET /ping``, ``POST /invocations``, ``GET /openapi.json``, ``GET /execution-parameters``.

Every request gets an id (``X-Request-Id`` in, or a new one; echoed back) and one JSON log line with its status
and latency. ServingErrors become the contract's error body and status; anything else is a bug: 500 with the trace
in the log, and the worker keeps serving.
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
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.contracts.invocation import CUSTOM_ATTRIBUTES_HEADER
from app.serving import payload
from app.serving.errors import BadRequest, Overloaded, ServingError
from app.serving.model import Detector
from app.serving.openapi import document
from app.serving.service import InferenceService
from app.serving.settings import ServingSettings

log = logging.getLogger("app.serving.app")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _error_response(code: str, status: int, message: str, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status, headers={"X-Request-Id": request_id}
    )


def create_app(detector: Detector, settings: ServingSettings) -> Starlette:
    service = InferenceService(detector, settings)
    openapi_doc = document(settings.max_images)
    execution_parameters = {
        "MaxConcurrentTransforms": settings.workers * settings.threads,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": max(1, settings.max_body_bytes // (1024 * 1024)),
    }

    async def invocations(request: Request) -> Response:
        started = time.monotonic()
        deadline = started + settings.deadline_s
        request_id = _request_id(request)
        fields: dict[str, Any] = {
            "request_id": request_id,
            "path": "/invocations",
            "content_type": request.headers.get("content-type"),
        }
        try:
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
            response: Response = JSONResponse(result, headers={"X-Request-Id": request_id})
        except ServingError as exc:
            fields.update(status=exc.status, code=exc.code, error=exc.message)
            response = _error_response(exc.code, exc.status, exc.message, request_id)
            if isinstance(exc, Overloaded):
                response.headers["Retry-After"] = str(exc.retry_after_s)
        except Exception:
            fields.update(status=500, code="internal_error")
            fields["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
            log.exception("invocation failed (bug)", extra={"fields": fields})
            return _error_response(
                "internal_error", 500, f"internal error; see the logs for request {request_id}", request_id
            )
        fields["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
        log.info("invocation", extra={"fields": fields})
        return response

    async def ping(request: Request) -> Response:
        if service.ready:
            return JSONResponse({"status": "ok"})
        return _error_response(
            "not_ready", 503, "the model is not loaded and warmed up yet", _request_id(request)
        )

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc)

    async def parameters(request: Request) -> Response:
        return JSONResponse(execution_parameters)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return _error_response(
            code, exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", _request_id(request)
        )

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
        exception_handlers={HTTPException: http_error},
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
