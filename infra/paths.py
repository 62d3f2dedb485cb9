"""The repository root (and the release records under it), for the code that runs from a checkout: the CDK app, operator scripts, benchmarks, tests.

Defined once here (infra is importable without CDK: this package's __init__ imports nothing) so that no module has
to count parent folders of its own file.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PINNED_NODE = REPO_ROOT / "node_modules" / ".bin" / "node"  # the Node.js package.json pins (`make setup`)
RELEASES_DIR = REPO_ROOT / "releases"  # <id>.json release records and CURRENT (app/contracts/release.py)
