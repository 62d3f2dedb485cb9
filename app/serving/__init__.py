"""The serve container's runtime: ``GET /ping`` and ``POST /invocations`` on ONNX Runtime.

Modules, one job each: ``settings`` (environment, parsed once), ``errors`` (typed errors -> HTTP status),
``images`` (decode + EXIF + letterbox), ``postprocess`` (raw YOLO output -> NMS -> original pixels), ``model``
(artifact loading and the ONNX Runtime session), ``payload`` (body limit, content types, options), ``service``
(the data plane ``invoke``; bounded thread pool, admission, deadline), ``app`` (Starlette routes, error handlers,
the request-log middleware), ``openapi``, ``logs``, ``server`` (uvicorn, signals). Never imports torch or
ultralytics.
"""
