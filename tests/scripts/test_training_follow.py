"""``python -m scripts.training follow`` streams the job's CloudWatch log lines before the status line, against moto
(a training job, found through the SageMaker Python SDK, and its log stream)."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from scripts.training import main

REGION = "eu-west-1"


def test_follow_prints_the_job_log_lines_then_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_training_job(
            TrainingJobName="yolo-dev-tools-1",
            AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
            RoleArn="arn:aws:iam::123456789012:role/training",
            OutputDataConfig={"S3OutputPath": "s3://bkt/training-output/"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
        stream = "yolo-dev-tools-1/algo-1-1700000000"
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
        logs.put_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream,
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "[metrics] epoch=1 mAP50-95=0.41"}],
        )
        code = main(
            ["--region", REGION, "follow", "--stage", "Dev", "yolo-dev-tools-1", "--interval", "0.01"]
        )
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 0
    assert "algo-1-1700000000  [metrics] epoch=1 mAP50-95=0.41" in out
    assert out.index("[metrics] epoch=1") < out.index("Completed")
