"""The repository root (and the release records under it), for the code that runs from a checkout: the CDK app, operator scripts, benchmarks, tests.

Defined once here (infra is importable without CDK: this package's __init__ imports nothing) so that no module has
to count parent folders of its own file.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PINNED_NODE = REPO_ROOT / "node_modules" / ".bin" / "node"  # the Node.js package.json pins (`make setup`)
JSII_NODE = REPO_ROOT / "infra" / "jsii_node.sh"  # runs PINNED_NODE for the CDK, in a session of its own
# The operator's release records (<id>.json) and CURRENT (infra/release_record.py). A fresh clone has none: the
# stages then deploy Data + Training and no endpoint (docs/infrastructure.md, "Deploying a stage"). Read at call time (``paths.RELEASES_DIR``),
# never bound at import, so the tests can prove that nothing but the operator's own app reads it.
RELEASES_DIR = REPO_ROOT / "releases"
# The example release (placeholder accounts, eu-west-1): a test fixture, and what make synth synthesizes the example
# pipeline with. Never the operator's CURRENT: the tests and the example pass whatever release the operator runs.
EXAMPLE_RELEASES_DIR = REPO_ROOT / "tests" / "fixtures" / "releases"
