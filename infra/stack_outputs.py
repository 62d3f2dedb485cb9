"""CloudFormation output keys of a stage's stacks: infra/stacks/* write them (``cdk.CfnOutput`` ids), operator
scripts read them (``scripts.lib.aws.stack_outputs``). One definition for both sides: a key renamed here is renamed in
the template and in every reader at once (the output's logical ID is the key, so renaming one changes the template).
"""

from __future__ import annotations


class DataOutputs:
    """``<stage>-Data`` (infra/stacks/stateful.py)."""

    DATASETS_BUCKET_NAME = "DatasetsBucketName"
    ARTIFACTS_BUCKET_NAME = "ArtifactsBucketName"
    MODEL_PACKAGE_GROUP_NAME = "ModelPackageGroupName"
    RELEASE_PARAMETER_NAME = "ReleaseParameterName"
    RELEASE_ID = "ReleaseId"

    @staticmethod
    def repository_uri(image: str) -> str:
        """The ECR repository of one image (``train``, ``serve``, ``dataprep``)."""
        return f"{image.capitalize()}RepositoryUri"


class TrainingOutputs:
    """``<stage>-Training`` (infra/stacks/training.py)."""

    RUNNER_FUNCTION_NAME = "RunnerFunctionName"
    REGISTRAR_FUNCTION_NAME = "RegistrarFunctionName"
    TRAINING_ROLE_ARN = "TrainingRoleArn"
    MODEL_PACKAGE_GROUP_NAME = "ModelPackageGroupName"
    JOB_NAME_PREFIX = "JobNamePrefix"
    NOTIFY_TOPIC_ARN = "NotifyTopicArn"
    TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
    TRAINING_USES_SPOT = "TrainingUsesSpot"
    TRAINING_INSTANCE_COUNT = "TrainingInstanceCount"
    DATAPREP_IMAGE_URI = "DataprepImageUri"
    DATAPREP_ROLE_ARN = "DataprepRoleArn"
    DATASETS_BUCKET_NAME = "DatasetsBucketName"
    DATA_KEY_ARN = "DataKeyArn"


class ServingOutputs:
    """``<stage>-Serving`` (infra/stacks/serving.py); the endpoint's keys only when the stage has an endpoint."""

    ENDPOINT_NAME = "EndpointName"
    ENDPOINT_CONFIG_NAME = "EndpointConfigName"
    VARIANT_NAME = "VariantName"
    MODEL_NAME = "ModelName"
    RELEASE_ID = "ReleaseId"
    ENDPOINT_STATUS = "EndpointStatus"  # "created", or why the stage has no endpoint (always present)
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DASHBOARD_NAME = "DashboardName"
