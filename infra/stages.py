"""The values of each stage: one screen per stage, read by ops engineers. Meanings and limits: infra/config.py.

Promotion order is the order of STAGES (dev -> staging -> prod).
"""

from __future__ import annotations

# The model version and images each stage runs come from the release (releases/CURRENT, docs/releasing.md), never
# from here: promoting a release is not a code edit.
#
# endpoint.precision (fp32 | int8): fp32 on every stage. int8 is a CPU-throughput win (~2.5x fp32 per instance on
# this platform's CPU measurements, issue 15), but Dev's traffic does not need it and Dev should run the graph Prod
# runs; int8 on a GPU family is refused at synth until `make gpu-check` measured it (GPU_INT8_MEASURED), and a release whose int8 graph failed the accuracy gate must still
# deploy. Switching a CPU stage to int8: the release must ship it (synth checks), and the stage's measured capacity
# must be re-measured at int8 (autoscaling.measured_precision, synth checks).

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
        # The champion comparison (docs/training-runs.md "Approval"): a candidate that may have lost more than
        # this to the stage's Approved model (overall / one class, lower bound of the 95% CI) waits for a person.
        "champion_map_drop_tolerance": 0.02,
        "champion_class_drop_tolerance": 0.1,
        "default_hyperparameters": {"epochs": "50", "imgsz": "640", "batch": "16", "patience": "10"},
    },
    # Data prep reads labels and images under the datasets bucket's raw/; add a labelling job's bucket here, e.g.
    # {"uri": "s3://my-labels/jobs/", "kms_key_arn": None} (docs/data-prep.md, "The cloud data path").
    "label_sources": [],
    "endpoint": {
        "instance_type": "ml.c6i.large",
        "precision": "fp32",
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
        "champion_map_drop_tolerance": 0.01,
        "champion_class_drop_tolerance": 0.05,
        "champion_min_class_instances": 20,
        "champion_confidence": 0.95,
        "default_hyperparameters": {"epochs": "150", "imgsz": "640", "batch": "32", "patience": "30"},
    },
    # Serves on Prod's GPU family and AMI (infra/config.py check_promotion_order), on one instance: a canary would
    # need >= 2 (at most 50% of the fleet), so all-at-once, still rolled back by the alarms. Cost: README, "Cost per stage".
    "endpoint": {
        "instance_type": "ml.g5.xlarge",
        "precision": "fp32",
        "initial_instance_count": 1,
        "data_capture_percent": 20,
        "autoscaling": {
            "min_capacity": 1,
            "max_capacity": 2,
            "measured_max_rps_per_instance": 60,
            "measured_precision": "fp32",
            "safety_factor": 0.5,
        },
        "deployment": {"strategy": "all_at_once", "wait_interval_s": 300},
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
        "champion_map_drop_tolerance": 0.01,
        "champion_class_drop_tolerance": 0.05,
        "champion_min_class_instances": 20,
        "champion_confidence": 0.95,
        "default_hyperparameters": {"epochs": "200", "imgsz": "640", "batch": "32", "patience": "50"},
    },
    "endpoint": {
        "instance_type": "ml.g5.xlarge",
        "precision": "fp32",
        "initial_instance_count": 2,
        "data_capture_percent": 5,
        "autoscaling": {
            "min_capacity": 2,
            "max_capacity": 8,
            "measured_max_rps_per_instance": 60,
            "measured_precision": "fp32",
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
        # Two instances at min: each linear step is one whole instance (50%), a bake after each (infra/config.py).
        "deployment": {"strategy": "linear", "linear_step_percent": 50, "wait_interval_s": 300},
    },
}

# Promotion order.
STAGES: dict[str, dict[str, object]] = {"Dev": DEV, "Staging": STAGING, "Prod": PROD}

# The release pipeline (infra/stacks/pipeline.py). None: no pipeline; stages are deployed by hand. To turn it on, set
# account and region of every stage above and fill this in like EXAMPLE_PIPELINE (docs/releasing.md).
PIPELINE: dict[str, object] | None = None

# make synth and the tests synthesize the pipeline with these placeholder values, so it stays cdk-nag and cfn-lint
# clean before anyone fills in PIPELINE. The release (releases/CURRENT) names images and model in the Dev account.
EXAMPLE_PIPELINE: dict[str, object] = {
    "account": "444444444444",
    "region": "eu-west-1",
    "connection_arn": "arn:aws:codeconnections:eu-west-1:444444444444:connection/00000000-1111-2222-3333-444444444444",
    "repository": "example-org/yolo-sagemaker-platform",
    "branch": "main",
    "approval_emails": ("release-approvers@example.com",),
}
EXAMPLE_ENVIRONMENTS: dict[str, dict[str, str]] = {
    "Dev": {"account": "111111111111", "region": "eu-west-1"},
    "Staging": {"account": "222222222222", "region": "eu-west-1"},
    "Prod": {"account": "333333333333", "region": "eu-west-1"},
}
