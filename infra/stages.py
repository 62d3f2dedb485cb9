"""The values of each stage: one screen per stage, read by ops engineers. Meanings and limits: infra/config.py.

Promotion order is the order of STAGES (dev -> staging -> prod).
"""

from __future__ import annotations

# The model version each stage serves: a model.tar.gz in the stage's artifacts bucket (or set model_package_arn).
# Treat keys as immutable - a new model gets a new key - so a change rolls out blue/green instead of new instances
# silently downloading a different object. Upload it after deploying <Stage>/Data (README: "Deploying a stage").
EXAMPLE_MODEL_KEY = "models/yolo-detector/v1/model.tar.gz"

DEV: dict[str, object] = {
    "retain_data": False,
    "log_retention_days": 14,
    "noncurrent_version_expiry_days": 7,
    "ecr_keep_images": 10,
    "tags": {"project": "yolo-detector", "stage": "dev", "cost-center": "visual-search"},
    "training": {
        "instance_type": "ml.g5.xlarge",
        "use_spot": True,
        "max_runtime_hours": 4,
        "max_wait_hours": 8,
        "quality_bar_map50_95": 0.3,
        "default_hyperparameters": {"epochs": "50", "imgsz": "640", "batch": "16", "patience": "10"},
    },
    "endpoint": {
        "model_data_key": EXAMPLE_MODEL_KEY,
        "instance_type": "ml.c6i.large",
        "initial_instance_count": 1,
        "data_capture_percent": 100,
        "autoscaling": {"min_capacity": 1, "max_capacity": 2, "invocations_per_instance_target": 600},
        "deployment": {"strategy": "all_at_once", "rollback_on_alarms": False},
    },
}

STAGING: dict[str, object] = {
    "retain_data": True,
    "log_retention_days": 90,
    "tags": {"project": "yolo-detector", "stage": "staging", "cost-center": "visual-search"},
    "training": {
        "instance_type": "ml.g5.2xlarge",
        "max_runtime_hours": 12,
        "max_wait_hours": 24,
        "quality_bar_map50_95": 0.5,
        "default_hyperparameters": {"epochs": "150", "imgsz": "640", "batch": "32", "patience": "30"},
    },
    "endpoint": {
        "model_data_key": EXAMPLE_MODEL_KEY,
        "instance_type": "ml.c6i.xlarge",
        "initial_instance_count": 2,  # a canary needs >= 2 instances (SageMaker: canary <= 50% of the fleet)
        "data_capture_percent": 20,
        "autoscaling": {
            "min_capacity": 2,
            "max_capacity": 4,
            "measured_max_rps_per_instance": 20,
            "safety_factor": 0.5,
        },
        "deployment": {"strategy": "canary", "canary_instances": 1, "wait_interval_s": 300},
    },
}

PROD: dict[str, object] = {
    "retain_data": True,
    "protect_stateless_stacks": True,
    "log_retention_days": 365,
    "noncurrent_version_expiry_days": 90,
    "ecr_keep_images": 50,
    "tags": {"project": "yolo-detector", "stage": "prod", "cost-center": "visual-search"},
    "training": {
        "instance_type": "ml.g5.2xlarge",
        "max_runtime_hours": 24,
        "max_wait_hours": 48,
        "quality_bar_map50_95": 0.6,
        "default_hyperparameters": {"epochs": "200", "imgsz": "640", "batch": "32", "patience": "50"},
    },
    "endpoint": {
        "model_data_key": EXAMPLE_MODEL_KEY,
        "instance_type": "ml.g5.xlarge",
        "initial_instance_count": 2,
        "data_capture_percent": 5,
        "autoscaling": {
            "min_capacity": 2,
            "max_capacity": 8,
            "measured_max_rps_per_instance": 60,
            "safety_factor": 0.5,
            # Fast scale-out at the same load point: 30 rps target x ~0.1 s model latency = 3 in flight.
            "concurrency_target": 3,
            "scale_in_cooldown_s": 600,
            "scale_out_cooldown_s": 60,
            # Days (weekends too) run at min/max above; nights re-apply their bounds hourly, so a stack update at
            # night costs at most an hour at the day's max (infra/config.py, AutoscalingSettings.check_schedule).
            "scheduled": [
                {
                    "name": "business-hours",
                    "schedule": "cron(0 7 ? * * *)",
                    "min_capacity": 2,
                    "max_capacity": 8,
                },
                {
                    "name": "nights",
                    "schedule": "cron(0 20-23,0-6 ? * * *)",
                    "min_capacity": 2,
                    "max_capacity": 4,
                },
            ],
        },
        "deployment": {"strategy": "linear", "linear_step_percent": 25, "wait_interval_s": 300},
    },
}

# Promotion order.
STAGES: dict[str, dict[str, object]] = {"Dev": DEV, "Staging": STAGING, "Prod": PROD}
