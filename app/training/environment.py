"""What a training job learns from its process environment: read once by the entrypoint (app/training/__main__.py)
and passed down, so no other training module reads ``os.environ``.

Two reads stay where they must be: the DDP rank (app/training/callbacks.py; ultralytics runs each extra GPU's worker
as a new process that unpickles the callbacks, so only the callback itself can know its rank) and the offline setup
(app/training/offline.py), which sets ultralytics' own variables before ultralytics is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

OPT_ML_ENV = "SM_OPT_ML"  # ours: stands in for /opt/ml in local runs (the --opt-ml flag wins)
JOB_NAME_ENV = "TRAINING_JOB_NAME"  # set by SageMaker in the training container; the model version
INSTANCE_TYPE_ENV = "SM_CURRENT_INSTANCE_TYPE"  # the SageMaker training toolkit's; resourceconfig.json wins
WEIGHTS_DIR_ENV = "TRAIN_WEIGHTS_DIR"  # where the train image bakes pretrained checkpoints (Dockerfile ENV)
DEFAULT_WEIGHTS_DIR = Path("/opt/ml-weights")


@dataclass(frozen=True)
class TrainingEnvironment:
    """The job's environment variables, typed; an unset or empty variable is None (or the default)."""

    opt_ml: Path | None = None
    job_name: str | None = None
    instance_type: str | None = None
    weights_dir: Path = DEFAULT_WEIGHTS_DIR

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        env = os.environ if environ is None else environ
        opt_ml, weights = env.get(OPT_ML_ENV), env.get(WEIGHTS_DIR_ENV)
        return cls(
            opt_ml=Path(opt_ml) if opt_ml else None,
            job_name=env.get(JOB_NAME_ENV) or None,
            instance_type=env.get(INSTANCE_TYPE_ENV) or None,
            weights_dir=Path(weights) if weights else DEFAULT_WEIGHTS_DIR,
        )
