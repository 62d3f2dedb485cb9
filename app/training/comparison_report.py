"""The comparison report people look at: per-class PR curves (IoU 0.5) of champion and candidate on the shared
classes, and both models' confusion matrices, side by side, as PNGs in the artifact's ``comparison/`` folder."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.contracts.comparison import Comparison
from app.training.evaluation import ImageStats

REPORT_DIR = "comparison"
PR_CURVES = f"{REPORT_DIR}/pr_curves.png"
CONFUSION = f"{REPORT_DIR}/confusion_matrices.png"


def _pr(images: list[ImageStats]) -> dict[int, tuple[np.ndarray, np.ndarray, float]]:
    """Per class id: (recall, precision at that recall, AP50) as ultralytics' ap_per_class computes them."""
    from ultralytics.utils.metrics import ap_per_class

    def cat(name: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate([getattr(i, name) for i in images] or [empty])

    target = cat("target_cls", np.zeros(0))
    if not len(target):
        return {}
    out = ap_per_class(
        cat("tp", np.zeros((0, 10), bool)), cat("conf", np.zeros(0)), cat("pred_cls", np.zeros(0)), target
    )
    ap, classes, x, precision = out[5], out[6], out[10], out[11]
    return {int(c): (x, precision[j], float(ap[j, 0])) for j, c in enumerate(classes)}


def plot_pr_curves(path: Path, comparison: Comparison, candidate: list[ImageStats], champion: list[ImageStats],
                   shared: Sequence[str]) -> Path:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, theirs = _pr(candidate), _pr(champion)
    columns = min(len(shared), 4)
    rows = math.ceil(len(shared) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 3.6 * rows), squeeze=False, constrained_layout=True
    )
    for k, name in enumerate(shared):
        ax = axes[k // columns][k % columns]
        for label, curves, style in (("champion", theirs, "--"), ("candidate", ours, "-")):
            if k in curves:
                x, y, ap50 = curves[k]
                ax.plot(x, y, style, label=f"{label} AP50 {ap50:.3f}")
        d = comparison.classes.get(name)
        worse = " (WORSE)" if name in comparison.worse_classes else ""
        title = f"{name}{worse}" + (
            f"\nAP50-95 {d.difference:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]" if d else ""
        )
        ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize="small", loc="lower left")
    for k in range(len(shared), rows * columns):
        axes[k // columns][k % columns].axis("off")
    fig.suptitle(f"PR curves (IoU 0.5), verdict: {comparison.verdict}")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_confusion(path: Path, candidate: np.ndarray, champion: np.ndarray, candidate_names: Sequence[str],
                   champion_names: Sequence[str]) -> Path:  # fmt: skip
    """Each model's matrix in its own classes (+ background), counts, [predicted, true]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), constrained_layout=True)
    for ax, title, matrix, names in (
        (axes[0], "champion", champion, champion_names),
        (axes[1], "candidate", candidate, candidate_names),
    ):
        labels = [*names, "background"]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set(title=title, xlabel="true", ylabel="predicted")
        top = matrix.max() or 1
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                ax.text(
                    j,
                    i,
                    f"{int(value)}",
                    ha="center",
                    va="center",
                    color="white" if value > top / 2 else "black",
                )
    fig.suptitle("Confusion matrices on the candidate's val split (conf 0.25, IoU 0.45)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_reports(
    model_dir: Path,
    *,
    comparison: Comparison,
    candidate: list[ImageStats],
    champion: list[ImageStats],
    shared: Sequence[str],
    confusion: tuple[np.ndarray | None, np.ndarray | None],
    candidate_names: Sequence[str],
    champion_names: Sequence[str],
) -> dict[str, str]:
    """Write the PNGs; return {report: path inside the artifact} for Comparison.reports. ``candidate`` and
    ``champion`` are both models' per-image statistics on the ``shared`` classes (ids = positions in ``shared``);
    ``confusion`` their full matrices (candidate's, champion's), each in its own classes."""
    (model_dir / REPORT_DIR).mkdir(exist_ok=True)
    plot_pr_curves(model_dir / PR_CURVES, comparison, candidate, champion, shared)
    reports = {"pr_curves": PR_CURVES}
    ours, theirs = confusion
    if ours is not None and theirs is not None:
        plot_confusion(model_dir / CONFUSION, ours, theirs, candidate_names, champion_names)
        reports["confusion_matrices"] = CONFUSION
    return reports
