"""SageMaker hosting, stood in locally for the journey: each endpoint's instance is the real ``serve`` executable
(tests/app/serving/server_process.py) on 127.0.0.1 with its Model's ``model.tar.gz`` unpacked as /opt/ml/model, and
the SageMaker Runtime API (``POST /endpoints/<name>/invocations``) is a small adapter in front of the instances.
boto3 reaches the adapter through its service endpoint variable ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (the AWS SDKs'
"Service-specific endpoints" setting), so the operator commands run unchanged; their calls still pass the policy
check (tests/journey/policy.py maps InvokeEndpoint to sagemaker:InvokeEndpoint on the endpoint).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.app.serving.server_process import LiveServer, start_server, stop_server
from tests.journey.loader import ServingModel

_INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")
# the request headers InvokeEndpoint passes on to the container (API_runtime_InvokeEndpoint.html: ContentType,
# Accept, CustomAttributes)
_FORWARDED = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")


class Hosting:
    """Instances by endpoint name, and the runtime adapter's URL (``url``).

    Endpoints whose Models serve the same model.tar.gz bytes with the same environment share one ``serve`` process
    (the app keeps no state between requests; a process per endpoint would only cost start-up time): what each
    endpoint answers still comes from the archive its own execution role downloaded."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.instances: dict[
            str, tuple[ServingModel, LiveServer]
        ] = {}  # endpoint name -> its Model, its server
        self._servers: dict[tuple[str, tuple[tuple[str, str], ...]], LiveServer] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, endpoint_name: str, model: ServingModel, archive: bytes) -> LiveServer:
        """The endpoint's instance of ``model``: ``archive`` (its model.tar.gz, as the execution role downloaded it)
        unpacked into a fresh /opt/ml/model and ``serve`` started on it. Runs on this machine's CPU whatever the
        variant: the GPU image's SERVING_DEVICE=cuda is set to cpu (the same app code; no GPU here), one worker."""
        environment = tuple(
            sorted({**dict(model.environment), "SERVING_DEVICE": "cpu", "SERVING_WORKERS": "1"}.items())
        )
        key = (hashlib.sha256(archive).hexdigest(), environment)
        server = self._servers.get(key)
        if server is None:
            root = self.workdir / f"instance-{len(self._servers) + 1}"
            model_dir = root / "opt" / "ml" / "model"
            model_dir.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as packed:
                packed.extractall(model_dir, filter="data")
            variables = dict(environment)  # SERVING_* names only, never start_server's own keywords
            server = self._servers[key] = start_server(model_dir, root / "serve.log", **variables)  # type: ignore[arg-type]
        self.instances[endpoint_name] = (model, server)
        return server

    def close(self) -> None:
        self.instances.clear()
        for server in self._servers.values():
            stop_server(server)
        self._servers.clear()
        self._server.shutdown()
        self._server.server_close()


def _handler(hosting: Hosting) -> type[BaseHTTPRequestHandler]:
    class RuntimeAdapter(BaseHTTPRequestHandler):
        """InvokeEndpoint (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html):
        the body goes to the instance's /invocations; a container's 4xx/5xx comes back as ModelError (HTTP 424) with
        OriginalStatusCode and OriginalMessage; an unknown endpoint is a ValidationError (400)."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            match = _INVOCATIONS.match(self.path.split("?", 1)[0])
            name = match.group(1) if match else ""
            running = hosting.instances.get(name)
            if running is None:
                self._error(400, "ValidationError", f"Endpoint {name} not found (no instance started).")
                return
            server = running[1]
            host, port = server.url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            headers = {h: self.headers[h] for h in _FORWARDED if self.headers.get(h)}
            connection.request("POST", "/invocations", body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            connection.close()
            if answer.status >= 400:
                self._error(
                    424,
                    "ModelError",
                    f"Received client error ({answer.status}) from primary with message "
                    f'"{payload.decode(errors="replace")[:500]}"',
                    OriginalStatusCode=answer.status,
                    OriginalMessage=payload.decode(errors="replace"),
                )
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int, code: str, message: str, **extra: object) -> None:
            payload = json.dumps({"message": message, **extra}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-ErrorType", code)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the serve log has the requests

    return RuntimeAdapter
