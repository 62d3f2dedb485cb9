"""Lambdas that start training jobs and react to finished ones (plain boto3; pydantic comes from a layer).

- ``runner``: operator request or S3 "dataset.json created" event -> one SageMaker training job per request.
- ``trigger``: what the runner accepts, parsed into a ``TrainingRequest`` (the one meaning of "request" here).
- ``training_job``: a ``TrainingRequest`` + the stage's settings -> the job's name and CreateTrainingJob parameters.
- ``registrar``: "SageMaker Training Job State Change" -> model package version (Completed) or SNS (Failed).
- ``settings``: both Lambdas' settings, read once from the Lambda environment that CDK writes.
- ``aws``: boto3 clients with the launcher's retry mode, and how their errors are classified.
"""
