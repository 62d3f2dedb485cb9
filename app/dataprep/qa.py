"""QA outputs of a plan: a JSON report, a readable text summary and a class-distribution bar chart (PNG)."""

from __future__ import annotations

import io
import json

from app.contracts.dataset import VAL, SplitCounts
from app.dataprep.plan import Plan

SAMPLE = 50  # messages/lines listed in the report; the rejects file has them all
# Below this many validation images a class's precision/recall/mAP move by 10+ points per image: still written,
# but said loudly. With none, the class is never validated at all (its mAP is missing from the job's metrics).
MIN_VAL_IMAGES_PER_CLASS = 10


def class_warnings(plan: Plan) -> list[str]:
    """One line per class whose validation split (after balancing) is empty or below MIN_VAL_IMAGES_PER_CLASS."""
    val = plan.counts_after.get(VAL, {})
    found = []
    for name in plan.class_names:
        images = val[name].images if name in val else 0
        if images == 0:
            found.append(
                f"class '{name}' has no validation images: training never measures it (no precision, recall or "
                "mAP for it); label more images of it or raise --val-fraction"
            )
        elif images < MIN_VAL_IMAGES_PER_CLASS:
            found.append(
                f"class '{name}' has {images} validation image(s), fewer than {MIN_VAL_IMAGES_PER_CLASS}: its "
                "validation metrics move a lot with each image; label more images of it"
            )
    return found


def report(plan: Plan) -> dict[str, object]:
    rejects = plan.rejects
    return {
        "version": plan.version,
        "source_manifest": plan.source_manifest,
        "label_attribute": plan.parsed.label_attribute,
        "label_format": plan.parsed.label_format,
        "records_read": plan.parsed.records,
        "images_kept": len(plan.images),
        "boxes_kept": len(plan.boxes),
        "negative_images": int(len(plan.images) - plan.boxes["image"].nunique()),
        "reject_fraction": round(plan.reject_fraction, 6),
        "max_reject_fraction": plan.options.max_reject_fraction,
        "rejected_by_reason": plan.rejected_by_reason(),
        "rejects_sample": [r.message(plan.source_manifest) for r in rejects[:SAMPLE]],
        "boxes_clipped": len(plan.parsed.clipped_lines),
        "clipped_lines_sample": plan.parsed.clipped_lines[:SAMPLE],
        "classes": [c.model_dump() for c in plan.classes],
        "counts_before_balancing": _plain(plan.counts_before),
        "counts_after_balancing": _plain(plan.counts_after),
        "balancing": plan.balancing,
        "min_val_images_per_class": MIN_VAL_IMAGES_PER_CLASS,
        "warnings": class_warnings(plan),
    }


def report_json(plan: Plan) -> bytes:
    return (json.dumps(report(plan), indent=2, default=str) + "\n").encode()


def _plain(counts: SplitCounts) -> dict[str, dict[str, dict[str, int]]]:
    return {s: {name: c.model_dump() for name, c in per.items()} for s, per in counts.items()}


def _labels_kind(plan: Plan) -> str:
    if plan.parsed.label_format == "groundtruth":
        return f"label attribute '{plan.parsed.label_attribute}'"
    return f"{plan.parsed.label_format.upper()} labels"


def summary_text(plan: Plan) -> str:
    """A table a person can read in a terminal or a Processing job's log."""
    lines = [
        f"Dataset {plan.version} from {plan.source_manifest} ({_labels_kind(plan)})",
        f"records {plan.parsed.records}, images {len(plan.images)}, boxes {len(plan.boxes)}, "
        f"clipped boxes {len(plan.parsed.clipped_lines)}, rejected/trimmed records {plan.reject_fraction:.1%}",
    ]
    if plan.rejects:
        reasons = ", ".join(f"{k} {v}" for k, v in plan.rejected_by_reason().items())
        lines.append(f"rejects: {reasons}")
    width = max([len(n) for n in plan.class_names] + [5])
    for title, counts in (("before balancing", plan.counts_before), ("after balancing", plan.counts_after)):
        lines.append("")
        lines.append(f"{title}: images/boxes per class and split")
        splits = list(counts)
        lines.append(f"  {'class':<{width}}  " + "  ".join(f"{s:>15}" for s in splits))
        for name in plan.class_names:
            cells = "  ".join(f"{counts[s][name].images:>7}/{counts[s][name].boxes:<7}" for s in splits)
            lines.append(f"  {name:<{width}}  {cells}")
    steps = plan.balancing.get("steps", [])
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and "bound_met" in step:
            status = "met" if step["bound_met"] else f"NOT met: {step.get('why_not', '')}"
            lines.append(f"balance {step['strategy']}: bound {step['bound']} {status}")
    warnings = class_warnings(plan)
    if warnings:
        lines.append("")
        lines.extend(f"warning: {w}" for w in warnings)
    return "\n".join(lines) + "\n"


def distribution_png(plan: Plan) -> bytes:
    """Boxes per class, one bar group per class, before vs after balancing per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = plan.class_names
    series = [
        (f"{split} before", [plan.counts_before[split][n].boxes for n in names])
        for split in plan.counts_before
    ] + [
        (f"{split} after", [plan.counts_after[split][n].boxes for n in names]) for split in plan.counts_after
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(names) + 3), 4), dpi=100)
    x = np.arange(len(names))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=label)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("boxes")
    ax.set_title(f"Class distribution ({plan.version})")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    # no version stamp: identical on every shard
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
