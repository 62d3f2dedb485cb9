"""Names of the launcher Lambdas' environment variables: infra/constructs/training_launchers.py writes them,
app/launcher/settings.py reads them (each settings field takes its variable's name from here), so the two sides
cannot drift apart.

tests/infra/test_launcher_environment.py builds the settings from the synthesized Lambda environment of every stage.
"""

from __future__ import annotations

# Both launchers
STAGE = "STAGE"
JOB_NAME_PREFIX = "JOB_NAME_PREFIX"
NOTIFY_TOPIC_ARN = "NOTIFY_TOPIC_ARN"

# The runner: what every training job of the stage gets
TRAINING_IMAGE_URI = "TRAINING_IMAGE_URI"
TRAINING_ROLE_ARN = "TRAINING_ROLE_ARN"
INSTANCE_TYPE = "INSTANCE_TYPE"
INSTANCE_COUNT = "INSTANCE_COUNT"
VOLUME_SIZE_GB = "VOLUME_SIZE_GB"
MAX_RUNTIME_SECONDS = "MAX_RUNTIME_SECONDS"
USE_SPOT = "USE_SPOT"
MAX_WAIT_SECONDS = "MAX_WAIT_SECONDS"
NETWORK_ISOLATION = "NETWORK_ISOLATION"
SUBNET_IDS = "SUBNET_IDS"
SECURITY_GROUP_IDS = "SECURITY_GROUP_IDS"
KMS_KEY_ARN = "KMS_KEY_ARN"
DATASETS_BUCKET = "DATASETS_BUCKET"
OUTPUT_S3_URI = "OUTPUT_S3_URI"
CHECKPOINT_S3_URI = "CHECKPOINT_S3_URI"
DEFAULT_HYPERPARAMETERS = "DEFAULT_HYPERPARAMETERS"
INT8_MAP_DROP_CAP = "INT8_MAP_DROP_CAP"
INT8_CLASS_DROP_CAP = "INT8_CLASS_DROP_CAP"
TAGS = "TAGS"

# Both: the champion comparison's tolerances (infra/config.py TrainingSettings.champion_*); the runner passes them
# to the job, the registrar approves only a comparison made with tolerances no looser than these.
CHAMPION_MAP_DROP_TOLERANCE = "CHAMPION_MAP_DROP_TOLERANCE"
CHAMPION_CLASS_DROP_TOLERANCE = "CHAMPION_CLASS_DROP_TOLERANCE"
CHAMPION_MIN_CLASS_INSTANCES = "CHAMPION_MIN_CLASS_INSTANCES"
CHAMPION_CONFIDENCE = "CHAMPION_CONFIDENCE"

# The registrar: where finished jobs become model versions (the runner reads the group too: its champion)
MODEL_PACKAGE_GROUP_NAME = "MODEL_PACKAGE_GROUP_NAME"
QUALITY_BAR_MAP50_95 = "QUALITY_BAR_MAP50_95"
SERVE_IMAGE_URI = "SERVE_IMAGE_URI"
