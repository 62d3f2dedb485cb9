"""AWS CDK app: composition root, typed stage config, stacks and constructs. Imports app.contracts only."""

import os

from infra.paths import JSII_NODE, PINNED_NODE

# The CDK's jsii kernel runs `node` from PATH unless JSII_NODE names one. Before any aws_cdk import, point it at the
# Node.js that package.json pins (a runtime the CDK supports: the machine's own may be end-of-life, and jsii then
# prints an 11-line banner on every synth), started in its own session (infra/jsii_node.sh: Ctrl-C is the command's
# to handle). Every import of aws_cdk in this project goes through this package.
if PINNED_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(JSII_NODE))
