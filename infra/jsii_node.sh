#!/bin/sh
# The Node.js that runs the CDK's jsii kernel (JSII_NODE, set by infra/__init__.py): package.json's pinned one, in a
# session of its own, so that a terminal's Ctrl-C (sent to the whole foreground process group) reaches only the Python
# command, which then stops the kernel itself. A kernel killed by the same SIGINT races the command's one-line exit
# with jsii's own "Error on jsii API channel" lines. setsid does not fork here: the kernel is no group leader.
node="$(dirname "$0")/../node_modules/.bin/node"
if command -v setsid >/dev/null 2>&1; then
  exec setsid "$node" "$@"
fi
exec "$node" "$@"
