"""The server's OpenAPI 3.0 document (served at ``GET /openapi.json``; schemathesis fuzzes the server from it).

Response schemas come from the contract models (app.contracts.invocation), so the document cannot drift from them.
"""

from __future__ import annotations

from typing import Any

from app.contracts.invocation import (
    CUSTOM_ATTRIBUTES_HEADER,
    ErrorResponse,
    InferenceOptions,
    InvocationResponse,
)
from app.serving.payload import RAW_TYPES

_REF = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in (InvocationResponse, ErrorResponse):
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}},
    }


def document(max_images: int) -> dict[str, Any]:
    opts = InferenceOptions.model_json_schema()["properties"]
    for prop in opts.values():
        prop.pop("title", None)
    base64_image = {"type": "string", "format": "byte", "description": "base64 of a JPEG or PNG image"}
    json_body = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "image": base64_image,
            "images": {"type": "array", "items": base64_image, "minItems": 1, "maxItems": max_images},
            **opts,
        },
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "YOLO detector (SageMaker serving container)", "version": "1"},
        "paths": {
            "/ping": {
                "get": {
                    "summary": "SageMaker health check: 200 once the model is loaded and warmed up",
                    "operationId": "ping",
                    "responses": {
                        "200": {
                            "description": "ready",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": _error("not ready yet"),
                    },
                }
            },
            "/invocations": {
                "post": {
                    "summary": "Detect objects in one image (raw bytes) or several (JSON, base64)",
                    "operationId": "invocations",
                    "parameters": [
                        {
                            "name": CUSTOM_ATTRIBUTES_HEADER,
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 1024},
                            "description": "options, e.g. conf=0.3,iou=0.5,max_det=100",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            **{kind: binary for kind in sorted(RAW_TYPES)},
                            "application/json": {"schema": json_body},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one prediction per image, in order",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": _REF.format(model="InvocationResponse")}
                                }
                            },
                        },
                        "400": _error("bad image, body or option"),
                        "406": _error("Accept does not allow application/json"),
                        "413": _error("body over the limit"),
                        "415": _error("unsupported content type"),
                        "500": _error("a bug (logged with its trace)"),
                        "503": _error("not ready or overloaded"),
                        "504": _error("deadline exceeded"),
                    },
                }
            },
            "/execution-parameters": {
                "get": {
                    "summary": "SageMaker batch transform hints",
                    "operationId": "executionParameters",
                    "responses": {
                        "200": {
                            "description": "hints",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }
