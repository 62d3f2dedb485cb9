"""``python -m app.training [train] [--opt-ml DIR]``: the training container's entrypoint (SageMaker runs
``docker run IMAGE train``; the image's ENTRYPOINT is this module, so ``train`` arrives as the mode argument)."""

from __future__ import annotations

import argparse
import sys

from app.training.run import main
from app.training.sagemaker import OPT_ML_ENV, resolve_opt_ml


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train", description=__doc__)
    parser.add_argument(
        "mode", nargs="?", default="train", choices=["train"], help="SageMaker passes 'train'"
    )
    parser.add_argument("--opt-ml", help=f"stands in for /opt/ml (default: env {OPT_ML_ENV} or /opt/ml)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(resolve_opt_ml(parse_args().opt_ml)))
