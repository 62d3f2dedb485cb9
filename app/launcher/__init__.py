"""Lambdas that start training jobs and react to finished ones (plain boto3; pydantic comes from a layer).

- ``runner``: operator request or S3 "dataset.json created" event -> one SageMaker training job per request.
- ``registrar``: "SageMaker Training Job State Change" -> model package version (Completed) or SNS (Failed).
"""
