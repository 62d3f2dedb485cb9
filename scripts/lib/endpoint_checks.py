"""The endpoint checks (``python -m scripts.verify_endpoint`` and the release gate ``verify`` both run them): is the
live endpoint running what its stack asked for, and does it answer? The checks are listed in
scripts/verify_endpoint.py's docstring."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.contracts.invocation import InvocationResponse, synthetic_inference_id
from infra.stack_outputs import ServingOutputs
from scripts.lib import aws

# verify's own requests are marked in the endpoint's data capture (app/contracts/invocation.py), as the bake load's are.
VERIFY_INFERENCE_ID = synthetic_inference_id("verify")
ROLLED_BACK = ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Expectation:
    """What the stage's config and release say the endpoint runs."""

    image: str  # <repository>@sha256:<digest>
    model_data_url: str
    instance_type: str
    data_capture_percent: int  # 0: capture off
    model_version: str  # model.json version, answered as model.version


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def compare(self, name: str, actual: object, expected: object, *, same: str, differs: str) -> bool:
        """One check of what runs against what was asked for: ``same`` when they are equal, else ``differs``."""
        ok = actual == expected
        return self.add(name, ok, same if ok else differs)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def render(self) -> str:
        return "\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks)


def invoke_sample(runtime: Any, endpoint: str, image: bytes) -> bytes:
    """One verify request (a JPEG, marked synthetic in data capture); the answer's body. AWS errors raise."""
    response = runtime.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="image/jpeg",
        Accept="application/json",
        Body=image,
        InferenceId=VERIFY_INFERENCE_ID,
    )
    return bytes(response["Body"].read())


def sample_jpeg() -> bytes:
    """A 640x480 JPEG (grey with a darker block), enough for a detector to answer."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (128, 128, 128))
    ImageDraw.Draw(image).rectangle((250, 100, 390, 420), fill=(60, 60, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def check_deployed(report: Report, endpoint: dict[str, Any], *, sagemaker: Any, expect: Expectation) -> None:
    """The endpoint's running config and model against the expectation (digest, model data, instance type,
    data capture). Reads what SageMaker runs, not what CloudFormation asked for."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = config.get("ProductionVariants", [])
    if not variants:
        report.add("image digest", False, f"{endpoint['EndpointConfigName']} has no production variant")
        return
    variant = variants[0]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    image = str(container.get("Image", ""))
    report.compare(
        "image digest",
        image,
        expect.image,
        same=f"runs {image.split('@')[-1]}",
        differs=f"runs {image or 'no image'}, the release says {expect.image}",
    )
    data = str(container.get("ModelDataUrl", ""))
    report.compare(
        "model data",
        data,
        expect.model_data_url,
        same=f"serves {data}",
        differs=f"serves {data or 'nothing'}, the release says {expect.model_data_url}",
    )
    instance = variant.get("InstanceType")
    runs = f"{variant['VariantName']} on {instance}"
    report.compare(
        "instance type",
        instance,
        expect.instance_type,
        same=runs,
        differs=f"{runs}, the config says {expect.instance_type}",
    )
    capture = endpoint.get("DataCaptureConfig") or {}
    enabled = bool(capture.get("EnableCapture")) and capture.get("CaptureStatus", "Started") == "Started"
    percent = int(capture.get("CurrentSamplingPercentage", 0)) if enabled else 0
    captured = f"{percent}% to {capture.get('DestinationS3Uri')}" if percent else "off"
    report.compare(
        "data capture",
        percent,
        expect.data_capture_percent,
        same=captured,
        differs=f"{captured}, the config says {expect.data_capture_percent}%",
    )


def verify(
    stack_name: str,
    *,
    cloudformation: Any,
    sagemaker: Any,
    runtime: Any,
    image: bytes,
    expect: Expectation | None = None,
) -> Report:
    """Run the checks with the given boto3 clients (cloudformation, sagemaker, sagemaker-runtime)."""
    report = Report()
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as exc:
        report.add("stack", False, f"{stack_name}: {exc.response['Error']['Message']}")
        return report
    status = stack["StackStatus"]
    outputs = aws.outputs_of(stack)
    if not report.add(
        "stack",
        status.endswith("_COMPLETE") and status not in ROLLED_BACK,
        f"{stack_name} is {status}" + (" (the last deployment rolled back)" if status in ROLLED_BACK else ""),
    ):
        return report
    if ServingOutputs.ENDPOINT_NAME not in outputs:
        report.add(
            "endpoint",
            False,
            outputs.get(
                ServingOutputs.ENDPOINT_STATUS, f"{stack_name} has no {ServingOutputs.ENDPOINT_NAME} output"
            ),
        )
        return report

    name = outputs[ServingOutputs.ENDPOINT_NAME]
    expected_config = outputs[ServingOutputs.ENDPOINT_CONFIG_NAME]
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except sagemaker.exceptions.ClientError as exc:
        report.add("endpoint", False, f"{name}: {exc.response['Error']['Message']}")
        return report
    live_status = endpoint["EndpointStatus"]
    report.add(
        "endpoint status",
        live_status == "InService",
        f"{name} is {live_status}"
        + (f": {endpoint['FailureReason']}" if endpoint.get("FailureReason") else ""),
    )
    current = endpoint["EndpointConfigName"]
    report.compare(
        "endpoint config",
        current,
        expected_config,
        same=f"runs {current}",
        differs=f"SILENT ROLLBACK: the endpoint runs {current}, the stack asked for {expected_config}",
    )
    variants = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
    expected_variant = outputs.get(ServingOutputs.VARIANT_NAME)
    if expected_variant:
        variant = variants.get(expected_variant)
        report.add(
            "variant",
            variant is not None,
            f"{expected_variant}: {variant.get('CurrentInstanceCount')} in service "
            f"(desired {variant.get('DesiredInstanceCount')})"
            if variant
            else f"expected variant {expected_variant}, the endpoint has {sorted(variants)}",
        )
    if expect is not None:
        check_deployed(report, endpoint, sagemaker=sagemaker, expect=expect)
    if live_status not in ("InService", "Updating"):
        return report

    try:
        body = invoke_sample(runtime, name, image)
    except runtime.exceptions.ClientError as exc:
        report.add(
            "invocation", False, f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
        )
        return report
    try:
        parsed = InvocationResponse.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        report.add("invocation", False, f"response is not an InvocationResponse: {str(exc).splitlines()[0]}")
        return report
    detections = sum(len(p.detections) for p in parsed.predictions)
    report.add(
        "invocation",
        len(parsed.predictions) == 1,
        f"model {parsed.model.name} {parsed.model.version}, {len(parsed.predictions)} prediction(s), "
        f"{detections} detection(s)",
    )
    if expect is not None:
        answers = f"answers {parsed.model.version}"
        report.compare(
            "model version",
            parsed.model.version,
            expect.model_version,
            same=answers,
            differs=f"{answers}, the release says {expect.model_version}",
        )
    return report
