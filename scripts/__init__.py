"""Operator commands, run as ``python -m scripts.<name> --help``: each a module here or a package with a ``__main__``
(scripts/release/); the libraries they share are scripts/lib. They call app/ and infra/ for the work itself."""

import sys

# ``python -m scripts.X`` imports this package first, while sys.argv[0] is still "-m" (Python docs, "Command line and
# environment", -m): Ctrl-C is one line and exit 130 from here on, even while the command's modules load
# (scripts/lib/cli.py). Importing the package from tests or another program changes nothing.
if sys.argv[:1] == ["-m"]:
    from scripts.lib.cli import quiet_ctrl_c

    quiet_ctrl_c()
