"""``python -m app.training [train] [--opt-ml DIR]``: the training container's entrypoint (SageMaker runs
``docker run IMAGE train``; the image's ENTRYPOINT is this module, so ``train`` arrives as the mode argument)."""

from __future__ import annotations

import argparse
import sys

from app.contracts.hyperparameters import OUR_ADDITIONS, Hyperparameters
from app.training.environment import OPT_ML_ENV, TrainingEnvironment
from app.training.run import EXIT_FAILED, EXIT_TERMINATED, run_job
from app.training.sagemaker import resolve_opt_ml

EPILOG = (
    f"exit codes: 0 = artifact written to <opt_ml>/model; {EXIT_FAILED} = failed, reason in "
    f"<opt_ml>/output/failure; {EXIT_TERMINATED} = SIGTERM, last finished epoch kept in <opt_ml>/checkpoints "
    "(a restart resumes there)"
)


def hyperparameter_table() -> str:
    """One table of every hyperparameter: ultralytics' own names (see its docs) and ours (described here)."""
    rows = []
    for name, field in Hyperparameters.model_fields.items():
        note = OUR_ADDITIONS.get(name) or field.description or "ultralytics train argument"
        rows.append(f"{name:<16} {field.default!s:<14} {note}")
    return "\n".join([f"{'name':<16} {'default':<14} meaning", *rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train", description=__doc__, epilog=EPILOG)
    parser.add_argument(
        "mode", nargs="?", default="train", choices=["train"], help="SageMaker passes 'train'"
    )
    parser.add_argument("--opt-ml", help=f"stands in for /opt/ml (default: env {OPT_ML_ENV} or /opt/ml)")
    parser.add_argument(
        "--hyperparameters", action="store_true", help="print the hyperparameter table and exit"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environment: TrainingEnvironment | None = None) -> int:
    """The entrypoint: the one place that reads the process environment (TrainingEnvironment) for the job."""
    args = parse_args(argv)
    if args.hyperparameters:
        print(hyperparameter_table())
        return 0
    environment = environment or TrainingEnvironment.read()
    opt_ml = resolve_opt_ml(args.opt_ml, environment)
    # a typo must not grow a new /opt/ml tree (and then fail on its missing config)
    if not opt_ml.root.is_dir():
        print(
            f"train: {opt_ml.root}: no such directory; expected the /opt/ml tree (--opt-ml)", file=sys.stderr
        )
        return 2
    return run_job(opt_ml, environment)


if __name__ == "__main__":
    sys.exit(main())
