"""Session-wide test settings: everything offline, ultralytics quiet and without network, no AWS credentials.

Heavy fixtures (a tiny trained model, a synthesized app) are built once per session in tests/fixtures/.
"""

from __future__ import annotations

import os

from app.training.offline import go_offline
from infra.paths import REPO_ROOT

# Before anything imports ultralytics, matplotlib or boto3: the training container's own offline setup, with its
# caches in the checkout's .cache (the training processes the tests start inherit these settings).
go_offline(REPO_ROOT / ".cache")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SECURITY_TOKEN"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.pop("AWS_PROFILE", None)

pytest_plugins = ["tests.fixtures.datasets", "tests.fixtures.artifacts"]
