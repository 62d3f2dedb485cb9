"""The champion comparison: score the candidate and the champion on the same val split with the same validator, per
class by name, with paired bootstrap intervals; the verdict by app.contracts.comparison.verdict_of.

Both fp32 ONNX models go through app.training.evaluation (ultralytics' validator, per-image statistics), each at its
own imgsz (model.json says which). Class ids differ between models whose class lists differ, and the validator
matches a prediction to a label by id, so the champion is scored on a view of the val split whose labels are
rewritten into its own ids (same images, linked); afterwards both models' statistics are restricted to the shared
classes in the candidate's ids. Classes only the candidate knows are ``new``, only the champion ``gone``.

The whole step is optional (:func:`compare_step`): any failure is a ``failed`` comparison with its reason, and the
candidate ships all the same.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from app.contracts.artifact import MODEL_ONNX
from app.contracts.comparison import ChampionRef, Comparison, Difference, Tolerances, verdict_of
from app.contracts.dataset import IMAGES_DIR, LABELS_DIR, VAL
from app.contracts.errors import ContractError
from app.contracts.hyperparameters import Hyperparameters
from app.training.bootstrap import SEED, paired_bootstrap
from app.training.champion import Champion, read_champion
from app.training.evaluation import Evaluation, ImageStats, average_precision, evaluate

DECIMALS = 6
NO_CHAMPION = "no champion channel: the stage had no Approved model"
OVERALL = "overall"


class ComparisonError(ContractError):
    """The two models cannot be compared (e.g. no class in common)."""


def tolerances_of(hp: Hyperparameters) -> Tolerances:
    return Tolerances(
        map_drop_tolerance=hp.champion_map_drop_tolerance,
        class_drop_tolerance=hp.champion_class_drop_tolerance,
        min_class_instances=hp.champion_min_class_instances,
        confidence=hp.champion_confidence,
    )


def restrict(images: Sequence[ImageStats], ids: dict[int, int]) -> list[ImageStats]:
    """Each image's predictions and labels of the classes in ``ids`` only, renumbered ``old id -> new id``."""

    def mapped(cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.isin(cls.astype(int), list(ids))
        return keep, np.asarray([ids[int(c)] for c in cls[keep]], dtype=np.float64)

    out = []
    for image in images:
        keep_p, pred_cls = mapped(image.pred_cls)
        keep_t, target_cls = mapped(image.target_cls)
        out.append(
            replace(
                image,
                tp=image.tp[keep_p],
                conf=image.conf[keep_p],
                pred_cls=pred_cls,
                pred_area=image.pred_area[keep_p],
                target_cls=target_cls,
                target_area=image.target_area[keep_t],
            )
        )
    return out


def champion_view(
    data_yaml: Path, champion_names: Sequence[str], candidate_names: Sequence[str], root: Path
) -> Path:
    """A data yaml for the candidate's val images with labels in the champion's class ids (labels of classes the
    champion does not know are left out: no champion prediction can match them, and they are not compared)."""
    data = yaml.safe_load(data_yaml.read_text())
    val_images = Path(data["path"]) / data[VAL]
    val_labels = Path(data["path"]) / str(data[VAL]).replace(IMAGES_DIR, LABELS_DIR, 1)
    to_champion = {i: champion_names.index(n) for i, n in enumerate(candidate_names) if n in champion_names}
    images, labels = root / IMAGES_DIR / VAL, root / LABELS_DIR / VAL
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for image in sorted(p for p in val_images.iterdir() if p.is_file()):
        os.symlink(
            image.resolve(), images / image.name
        )  # same file name: the pairing key of the two evaluations
        label = val_labels / f"{image.stem}.txt"
        lines = label.read_text().splitlines() if label.is_file() else []
        kept = [
            " ".join([str(to_champion[int(cls)]), *rest])
            for cls, *rest in (line.split() for line in lines if line.strip())
            if int(cls) in to_champion
        ]
        (labels / f"{image.stem}.txt").write_text("".join(f"{line}\n" for line in kept))
    out = root / "data.yaml"
    out.write_text(
        yaml.safe_dump(
            {"path": str(root), "train": f"{IMAGES_DIR}/{VAL}", "val": f"{IMAGES_DIR}/{VAL}",
             "names": dict(enumerate(champion_names))},
            sort_keys=False,
        )
    )  # fmt: skip
    return out


def _differences(
    candidate: list[ImageStats], champion: list[ImageStats], shared: list[str], confidence: float
) -> tuple[Difference, dict[str, Difference], int]:
    """(overall, per class, resamples): point differences on all images, intervals from the paired bootstrap."""
    a, b = average_precision(candidate), average_precision(champion)
    scored = [c for c in range(len(shared)) if c in a["classes"]]  # shared classes with val instances

    def statistic(x: list[ImageStats], y: list[ImageStats]) -> np.ndarray:
        ax, ay = average_precision(x), average_precision(y)
        row = [ax["mAP50-95"] - ay["mAP50-95"]]
        for c in scored:
            if c in ax["classes"]:
                row.append(ax["classes"][c]["AP50-95"] - ay["classes"][c]["AP50-95"])
            else:
                row.append(np.nan)  # the class has no instance in this resample
        return np.asarray(row)

    samples = paired_bootstrap(candidate, champion, statistic, what="champion and candidate")
    tail = (1 - confidence) / 2
    low = np.nanquantile(samples, tail, axis=0)
    high = np.nanquantile(samples, 1 - tail, axis=0)

    def difference(candidate_ap: float, champion_ap: float, j: int, instances: int) -> Difference:
        r = lambda v: round(float(v), DECIMALS)  # noqa: E731
        return Difference(
            champion=r(champion_ap),
            candidate=r(candidate_ap),
            difference=r(candidate_ap - champion_ap),
            ci_low=r(min(low[j], high[j])),
            ci_high=r(max(low[j], high[j])),
            instances=instances,
        )

    overall = difference(a["mAP50-95"], b["mAP50-95"], 0, a["instances"])
    classes = {
        shared[c]: difference(
            a["classes"][c]["AP50-95"], b["classes"][c]["AP50-95"], j + 1, a["classes"][c]["instances"]
        )
        for j, c in enumerate(scored)
    }
    return overall, classes, len(samples)


def _signed(d: Difference) -> str:
    return f"{d.difference:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"


def why_of(comparison: Comparison, champion: ChampionRef) -> str:
    """The verdict in one line, naming the classes."""
    assert comparison.overall is not None and comparison.tolerances is not None
    tol, pct = comparison.tolerances, f"{comparison.tolerances.confidence:.0%}"
    overall = f"overall mAP50-95 {_signed(comparison.overall)} ({pct} CI) vs champion {champion.version}"
    if comparison.verdict == "worse":
        named = [
            f"'{n}' {_signed(comparison.classes[n])} < -{tol.class_drop_tolerance:g}"
            for n in comparison.worse_classes
        ]
        text = "worse: " + ("; ".join(["classes " + ", ".join(named)] if named else []) or "")
        if comparison.overall.ci_low < -tol.map_drop_tolerance:
            text += ("; " if named else "") + f"{overall}, below -{tol.map_drop_tolerance:g}"
        else:
            text += f"; {overall}"
    else:
        text = f"{comparison.verdict.replace('_', ' ') if comparison.verdict else ''}: {overall}"
    for label, names in (
        ("new", comparison.new_classes),
        ("gone", comparison.gone_classes),
        ("underpowered", comparison.underpowered_classes),
    ):
        if names:
            text += f"; {label}: {', '.join(names)}"
    return text


def compare(
    *,
    candidate: Evaluation,
    candidate_names: Sequence[str],
    champion: Champion,
    champion_evaluation: Evaluation,
    tolerances: Tolerances,
    imgsz: int,
) -> Comparison:
    """The comparison of two evaluations on the same val images (the champion's in its own class ids)."""
    champion_names = champion.card.class_names
    shared = [n for n in candidate_names if n in champion_names]
    if not shared:
        raise ComparisonError(
            f"no class in common: candidate {list(candidate_names)}, champion {champion_names}; nothing to compare"
        )
    ours = restrict(candidate.images, {list(candidate_names).index(n): i for i, n in enumerate(shared)})
    theirs = restrict(champion_evaluation.images, {champion_names.index(n): i for i, n in enumerate(shared)})
    overall, classes, resamples = _differences(ours, theirs, shared, tolerances.confidence)
    verdict, worse, underpowered = verdict_of(overall, classes, tolerances)
    comparison = Comparison(
        status="compared",
        champion=champion.ref,
        tolerances=tolerances,
        images=len(ours),
        resamples=resamples,
        overall=overall,
        classes=classes,
        new_classes=[n for n in candidate_names if n not in champion_names],
        gone_classes=[n for n in champion_names if n not in candidate_names],
        underpowered_classes=underpowered,
        worse_classes=worse,
        verdict=verdict,
        imgsz={"candidate": imgsz, "champion": champion.card.imgsz},
        unscored_classes=[n for n in shared if n not in classes],
        seed=SEED,
    )
    return comparison.model_copy(update={"why": why_of(comparison, champion.ref)})


Log = Callable[[str], None]


def compare_step(
    *,
    model_dir: Path,
    candidate_names: Sequence[str],
    imgsz: int,
    data_yaml: Path,
    channel: Path | None,
    hp: Hyperparameters,
    workdir: Path,
    log: Log = print,
) -> Comparison:
    """Compare ``model_dir``'s model.onnx with the champion in ``channel``; never raises (an optional step)."""
    if channel is None:
        comparison = Comparison(status="no_champion", reason=NO_CHAMPION, why=NO_CHAMPION)
        log(f"[comparison] {NO_CHAMPION}")
        return comparison
    started = time.monotonic()
    ref: ChampionRef | None = None
    try:
        with tempfile.TemporaryDirectory(dir=workdir, prefix="comparison-") as tmp:
            champion = read_champion(channel, Path(tmp), hp)
            ref = champion.ref
            log(
                f"[comparison] scoring champion {ref.version} (imgsz {champion.card.imgsz}) and the candidate "
                f"(imgsz {imgsz}) on the val split, each at its own imgsz"
            )
            ours = evaluate(
                model_dir / MODEL_ONNX,
                data_yaml=data_yaml,
                imgsz=imgsz,
                workdir=Path(tmp),
                class_names=candidate_names,
            )
            view = champion_view(
                data_yaml, champion.card.class_names, candidate_names, Path(tmp) / "champion-val"
            )
            theirs = evaluate(
                champion.onnx,
                data_yaml=view,
                imgsz=champion.card.imgsz,
                workdir=Path(tmp),
                class_names=champion.card.class_names,
            )
        comparison = compare(
            candidate=ours,
            candidate_names=candidate_names,
            champion=champion,
            champion_evaluation=theirs,
            tolerances=tolerances_of(hp),
            imgsz=imgsz,
        )
    except Exception as exc:  # an optional step: the candidate ships, the registrar leaves it to a person
        reason = str(exc) if isinstance(exc, ContractError) else f"{type(exc).__name__}: {str(exc)[:500]}"
        comparison = Comparison(
            status="failed", reason=reason, champion=ref, why=f"comparison failed: {reason}"
        )
        log(f"[comparison] FAILED (the model ships all the same): {reason}")
        return comparison
    reports = _reports(model_dir, comparison, ours, theirs, candidate_names, champion.card.class_names, log)
    comparison = comparison.model_copy(
        update={"reports": reports, "seconds": round(time.monotonic() - started, 1)}
    )
    log(f"[comparison] {comparison.why}")
    return comparison


def _reports(
    model_dir: Path,
    comparison: Comparison,
    ours: Evaluation,
    theirs: Evaluation,
    candidate_names: Sequence[str],
    champion_names: Sequence[str],
    log: Log,
) -> dict[str, str]:
    """The PNG report; a plot that fails is logged and left out, never costs the comparison."""
    from app.training.comparison_report import write_reports

    shared = [n for n in candidate_names if n in champion_names]
    try:
        return write_reports(
            model_dir,
            comparison=comparison,
            candidate=restrict(
                ours.images, {list(candidate_names).index(n): i for i, n in enumerate(shared)}
            ),
            champion=restrict(
                theirs.images, {list(champion_names).index(n): i for i, n in enumerate(shared)}
            ),
            shared=shared,
            confusion=(ours.confusion, theirs.confusion),
            candidate_names=candidate_names,
            champion_names=champion_names,
        )
    except Exception as exc:
        log(f"[comparison] WARNING the report plots failed ({type(exc).__name__}: {exc}); comparison kept")
        return {}
