"""After a deploy: is the live endpoint running what the stack asked for, and does it answer?

    python -m scripts.verify_endpoint --stage Prod [--image photo.jpg] [--region eu-west-1]

Checks, in order (exit 0 only if all pass):
1. the stage's serving stack (CloudFormation ``<Stage>-Serving``) is in a completed, not rolled-back state, and has
   an endpoint (its ``EndpointStatus`` output);
2. the endpoint is ``InService`` and runs the endpoint config of the stack's ``EndpointConfigName`` output, with the
   ``VariantName`` it expects. A different config means a silent rollback (a guardrail rolled the deployment back,
   or someone changed the endpoint by hand) while the deploy may have reported success;
3. one sample image (``--image``, default a generated 640x480 JPEG) gets a 200 with a body that matches the
   invocation contract (app.contracts.invocation.InvocationResponse);
4. with an ``Expectation`` (the release gates, ``python -m scripts.release verify``): the model the endpoint runs has the
   release's serve image digest and model data, the variant runs the configured instance type, the endpoint's actual
   data capture matches the config, and the invocation answers with the release's model version.

Exit status (scripts/lib/cli.py): 0 all checks pass, 1 error (AWS, credentials), 2 usage, 3 a check failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from scripts.lib import aws, cli
from scripts.lib.endpoint_checks import sample_jpeg, verify


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
    session = aws.aws_session(profile=args.profile, region=args.region)
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
