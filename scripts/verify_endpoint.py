"""After a deploy: is the live endpoint running what the stack asked for, and does it answer?

    python -m scripts.verify_endpoint --stage Prod [--image photo.jpg] [--region eu-west-1]

Checks, in order (exit 0 only if all pass):
1. the stage's serving stack (CloudFormation ``<Stage>-Serving``) is in a completed, not rolled-back state, and has
   an endpoint (its ``EndpointStatus`` output);
2. the endpoint is ``InService`` and runs the endpoint config of the stack's ``EndpointConfigName`` output, with the
   ``VariantName`` it expects. A different config means a silent rollback (a guardrail rolled the deployment back,
   or someone changed the endpoint by hand) while the deploy may have reported success;
3. one sample image (``--image``, default a generated 640x480 JPEG) gets a 200 with a body that matches the
   invocation contract (app.contracts.invocation.InvocationResponse).

Exit status (scripts/cli.py): 0 all checks pass, 1 error (AWS, credentials), 2 usage, 3 a check failed.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.contracts.invocation import InvocationResponse
from scripts import cli

ROLLED_BACK = ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def render(self) -> str:
        return "\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks)


def sample_jpeg() -> bytes:
    """A 640x480 JPEG (grey with a darker block), enough for a detector to answer."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (128, 128, 128))
    ImageDraw.Draw(image).rectangle((250, 100, 390, 420), fill=(60, 60, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def verify(stack_name: str, *, cloudformation: Any, sagemaker: Any, runtime: Any, image: bytes) -> Report:
    """Run the checks with the given boto3 clients (cloudformation, sagemaker, sagemaker-runtime)."""
    report = Report()
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as exc:
        report.add("stack", False, f"{stack_name}: {exc.response['Error']['Message']}")
        return report
    status = stack["StackStatus"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if not report.add(
        "stack",
        status.endswith("_COMPLETE") and status not in ROLLED_BACK,
        f"{stack_name} is {status}" + (" (the last deployment rolled back)" if status in ROLLED_BACK else ""),
    ):
        return report
    if "EndpointName" not in outputs:
        report.add(
            "endpoint", False, outputs.get("EndpointStatus", f"{stack_name} has no EndpointName output")
        )
        return report

    name, expected_config = outputs["EndpointName"], outputs["EndpointConfigName"]
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
    report.add(
        "endpoint config",
        current == expected_config,
        f"runs {current}"
        if current == expected_config
        else f"SILENT ROLLBACK: the endpoint runs {current}, the stack asked for {expected_config}",
    )
    variants = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
    expected_variant = outputs.get("VariantName")
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
    if live_status not in ("InService", "Updating"):
        return report

    try:
        response = runtime.invoke_endpoint(
            EndpointName=name, ContentType="image/jpeg", Accept="application/json", Body=image
        )
        body = response["Body"].read()
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
    return report


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m scripts.verify_endpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--stage", required=True, type=cli.stage_name, help="stage name, e.g. Prod (stack <Stage>-Serving)"
    )
    p.add_argument("--stack-name", help="override the CloudFormation stack name")
    p.add_argument(
        "--image", type=cli.existing_file, help="a JPEG to send (default: a generated 640x480 image)"
    )
    p.add_argument("--region", help="AWS region (default: the boto3 default)")
    p.add_argument("--profile", help="AWS profile (default: the environment's)")
    return p


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    session = cli.aws_session(profile=args.profile, region=args.region)
    report = verify(
        args.stack_name or f"{args.stage}-Serving",
        cloudformation=session.client("cloudformation"),
        sagemaker=session.client("sagemaker"),
        runtime=session.client("sagemaker-runtime"),
        image=args.image.read_bytes() if args.image else sample_jpeg(),
    )
    print(report.render())
    print("OK" if report.ok else "FAILED")
    return cli.EXIT_OK if report.ok else cli.EXIT_CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
