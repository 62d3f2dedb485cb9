"""Training job channels and paths: what the launcher's CreateTrainingJob request names and the training container
reads (``/opt/ml/input/data/<channel>``, ``/opt/ml/checkpoints``)."""

from __future__ import annotations

DATASET_CHANNEL = "dataset"  # the data prep output (required)
PRETRAINED_CHANNEL = "pretrained"  # a .pt or model.tar.gz to fine-tune from (optional)
CHAMPION_CHANNEL = "champion"  # the stage's Approved model.tar.gz the candidate is compared with (optional)
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"  # synced with the job's CheckpointConfig.S3Uri (spot resume)
