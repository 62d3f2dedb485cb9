"""Names every stack derives from a stage's name: the training job prefix (IAM scopes, EventBridge rules, the
dashboard's training graphs all filter on it) and the model package group. One definition, so they never drift."""

from __future__ import annotations


def job_name_prefix(stage_name: str) -> str:
    """Every training job of the stage starts with this (IAM scopes CreateTrainingJob to it)."""
    return f"yolo-{stage_name.lower()}-"


def model_package_group_name(stage_name: str) -> str:
    return f"yolo-detector-{stage_name.lower()}"


def release_parameter_name(stage_name: str) -> str:
    """SSM parameter holding the id of the release the stage runs (its versions are the stage's history)."""
    return f"/yolo-detector/{stage_name.lower()}/release-id"
