"""BakeLoad: synthetic traffic on a stage's endpoint while a canary/linear deployment bakes, so the rollback alarms
judge the new fleet on data (an idle endpoint gives them none and a bad release would pass the bake).

A CodeBuild project without source (bash + the AWS CLI of the standard image) that a pre-deploy step starts and
does not wait for: it finds the endpoint and the stage's ReleaseVerifierRole through the Serving stack's outputs
(read with the CDK bootstrap lookup role), invokes the endpoint at a small steady rate, and stops when the
endpoint returns to InService after an update, or after its time budget. A first deploy (no endpoint yet) exits.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from app.contracts.invocation import synthetic_inference_id

# A 32x32 grey JPEG: the endpoint answers it like any photo (no detections), and it fits in an environment variable.
SMOKE_JPEG_B64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAgACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwAooooAKKKKACiiigAooooA/9k="

_SCRIPT = r"""
set -u
creds() { aws sts assume-role --role-arn "$1" --role-session-name bake-load --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text; }
read -r AK SK ST <<< "$(creds "$LOOKUP_ROLE")"
OUTPUTS=$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$ST aws cloudformation describe-stacks --stack-name "$STAGE-Serving" --query 'Stacks[0].Outputs' --output json 2>/dev/null || echo '[]')
output() { echo "$OUTPUTS" | python3 -c "import json,sys; print({o['OutputKey']: o['OutputValue'] for o in json.load(sys.stdin) or []}.get('$1', ''))"; }
ENDPOINT=$(output EndpointName); ROLE=$(output ReleaseVerifierRoleArn)
if [ -z "$ENDPOINT" ] || [ -z "$ROLE" ]; then echo "$STAGE has no endpoint yet: no bake to load"; exit 0; fi
read -r AK SK ST <<< "$(creds "$ROLE")"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$ST
echo "$SMOKE_JPEG_B64" | base64 -d > /tmp/smoke.jpg
END=$(( $(date +%s) + MAX_SECONDS )); SEEN_UPDATE=0; SENT=0; FAILED=0
RENEW=$(( $(date +%s) + RENEW_SECONDS ))
while [ "$(date +%s)" -lt "$END" ]; do
  if [ "$(date +%s)" -ge "$RENEW" ]; then  # assumed-role credentials last 1 h; the bake may run longer
    read -r AK SK ST <<< "$(creds "$ROLE")"
    export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$ST
    RENEW=$(( $(date +%s) + RENEW_SECONDS ))
  fi
  for _ in $(seq "$PARALLEL"); do
    aws sagemaker-runtime invoke-endpoint --endpoint-name "$ENDPOINT" --content-type image/jpeg --inference-id "$INFERENCE_ID" --body fileb:///tmp/smoke.jpg /dev/null >/dev/null 2>&1 || echo fail >> /tmp/failed &
  done
  wait; SENT=$(( SENT + PARALLEL ))
  STATUS=$(aws sagemaker describe-endpoint --endpoint-name "$ENDPOINT" --query EndpointStatus --output text)
  [ "$STATUS" != InService ] && SEEN_UPDATE=1
  if [ "$SEEN_UPDATE" = 1 ] && [ "$STATUS" = InService ]; then break; fi
done
echo "sent $SENT requests to $ENDPOINT ($(wc -l < /tmp/failed 2>/dev/null || echo 0) failed); last status $STATUS"
"""


# An assumed role's session lasts one hour: DurationSeconds "By default, the value is set to 3600 seconds", and "Role
# chaining limits your ... role session to a maximum of one hour" (CodeBuild's own credentials are a role session)
# (AWS STS API Reference, AssumeRole, https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html, read
# 2026-12-05). A bake may run longer (max_seconds): the script assumes the role again every RENEW_SECONDS.
RENEW_SECONDS = 45 * 60
# Marks every synthetic request in the endpoint's data capture (app/contracts/invocation.py), so whoever reads the
# capture can drop them.
SYNTHETIC_INFERENCE_ID = synthetic_inference_id("bake-load")


class BakeLoad(Construct):
    """Public: project."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        account: str,
        region: str,
        lookup_role_arn: str,
        max_seconds: int,
        parallel: int,
        encryption_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.project = codebuild.Project(
            self,
            "Project",
            description=f"{stage}: synthetic traffic while a deployment bakes (release pipeline)",
            build_spec=codebuild.BuildSpec.from_object(
                {"version": "0.2", "phases": {"build": {"commands": ['bash -c "$BAKE_SCRIPT"']}}}
            ),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_8_0, compute_type=codebuild.ComputeType.SMALL
            ),
            environment_variables={
                name: codebuild.BuildEnvironmentVariable(value=value)
                for name, value in {
                    "STAGE": stage,
                    "AWS_DEFAULT_REGION": region,
                    "LOOKUP_ROLE": lookup_role_arn,
                    "MAX_SECONDS": str(max_seconds),
                    "PARALLEL": str(parallel),
                    "SMOKE_JPEG_B64": SMOKE_JPEG_B64,
                    "BAKE_SCRIPT": _SCRIPT,
                    "RENEW_SECONDS": str(RENEW_SECONDS),
                    "INFERENCE_ID": SYNTHETIC_INFERENCE_ID,
                }.items()
            },
            timeout=cdk.Duration.seconds(max_seconds + 600),
            encryption_key=encryption_key,
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[
                    lookup_role_arn,
                    f"arn:{cdk.Stack.of(self).partition}:iam::{account}:role/{stage}-Serving-*",
                ],
            )
        )
