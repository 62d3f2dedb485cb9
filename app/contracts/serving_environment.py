"""Names of the serving container's environment variables, shared by infra (which writes them into the SageMaker
Model) and app/serving/settings.py (``ServingSettings``: ``PREFIX`` + the field name, case-insensitive).

Every setting is in exactly one group: set by infra from typed stage fields, fixed by the SageMaker hosting contract,
or tunable by a stage through ``endpoint.environment`` (synth refuses any other name there, so a misspelled knob is an
error instead of a setting the server silently ignores). tests/app/serving/test_settings.py checks the groups against
ServingSettings' fields.
"""

from __future__ import annotations

PREFIX = "SERVING_"

# Set by infra (infra/constructs/endpoint.py): the graph from endpoint.precision; cuda on GPU instances.
PRECISION = "SERVING_PRECISION"
DEVICE = "SERVING_DEVICE"
SET_BY_INFRA: frozenset[str] = frozenset({PRECISION, DEVICE})

# Fixed in a SageMaker container: the model is untarred to /opt/ml/model, the server binds 0.0.0.0 on the port
# SageMaker names (SAGEMAKER_BIND_TO_PORT, else 8080).
FIXED: frozenset[str] = frozenset({"SERVING_MODEL_DIR", "SERVING_HOST", "SERVING_PORT"})

TUNABLE: frozenset[str] = frozenset(
    {
        "SERVING_WORKERS",
        "SERVING_THREADS",
        "SERVING_INTRA_OP_THREADS",
        "SERVING_SPINNING",
        "SERVING_PARALLEL_RUNS",
        "SERVING_MAX_QUEUE",
        "SERVING_ADMIT_FRACTION",
        "SERVING_MAX_BODY_BYTES",
        "SERVING_MAX_IMAGES",
        "SERVING_MAX_IMAGE_PIXELS",
        "SERVING_DEADLINE_S",
        "SERVING_GRACEFUL_TIMEOUT_S",
        "SERVING_WARMUP_RUNS",
        "SERVING_LOG_LEVEL",
        "SERVING_CONF",
        "SERVING_IOU",
        "SERVING_MAX_DET",
    }
)
