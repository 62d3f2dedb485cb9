"""The paired bootstrap over val images, shared by the int8 gate (fp32 vs int8) and the champion comparison
(champion vs candidate): both models are scored on the same resampled images, so what varies between resamples is
the image set, not the pairing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.training.evaluation import ImageStats

RESAMPLES = 500
SEED = 0

Statistic = Callable[[list[ImageStats], list[ImageStats]], "np.ndarray | float"]


def paired(a: Sequence[ImageStats], b: Sequence[ImageStats], *, what: str) -> list[ImageStats]:
    """``b`` in the order of ``a`` (matched by image name); ValueError when they were not scored on the same images."""
    by_name = {i.name: i for i in b}
    missing = [i.name for i in a if i.name not in by_name]
    if missing or len(a) != len(b):
        raise ValueError(f"the {what} were not scored on the same val images (e.g. {missing[:3]})")
    return [by_name[i.name] for i in a]


def paired_bootstrap(
    a: Sequence[ImageStats],
    b: Sequence[ImageStats],
    statistic: Statistic,
    *,
    what: str,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> np.ndarray:
    """``statistic(a', b')`` on ``resamples`` resamples (with replacement) of the images, the same picks for both:
    shape [resamples] for a number, [resamples, k] for k numbers."""
    b_paired = paired(a, b, what=what)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        pick = rng.integers(0, len(a), len(a))
        out.append(statistic([a[i] for i in pick], [b_paired[i] for i in pick]))
    return np.asarray(out, dtype=np.float64)
