"""Metric log lines (training container -> CloudWatch via SageMaker ``MetricDefinitions``).

The training container prints exactly one line per epoch, e.g.::

    [metrics] epoch=3/10 train_box_loss=1.234567 train_cls_loss=2.1 train_dfl_loss=1.3 val_box_loss=1.4 \
val_cls_loss=2.2 val_dfl_loss=1.35 precision=0.71 recall=0.64 mAP50=0.69 mAP50-95=0.41

and, after training, ONE final line for the model it ships (the best epoch's weights, re-validated)::

    [metrics] final train_box_loss=1.3 ... mAP50=0.72 mAP50-95=0.44

SageMaker's ``FinalMetricDataList`` keeps each metric's last value, so every metric but ``epoch`` ends on the
shipped model's values (the ones in model.json), not on the last epoch's. The final line carries the losses of
the shipped epoch too, so train/val loss finals describe the same weights.

``METRIC_DEFINITIONS`` is what CDK / the launcher hands SageMaker; ``parse_epoch_line`` is the same regexes used
locally (demo, tests), so the two can never drift apart.

``METRICS`` is the one table of each number's three names: the key in the log line and in model.json, the SageMaker
metric name, and ultralytics' name (results.csv column, trainer/validator metrics key). Everything else - the regexes,
the trainer's epoch line, model.json's metrics, the int8 gate, the registrar's quality metric - is derived from it,
and :func:`from_ultralytics` refuses a table that lacks one of ultralytics' names, so an ultralytics rename fails the
job by name instead of shipping NaN metrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.contracts.errors import ContractError

PREFIX = "[metrics]"
FINAL = "final"


@dataclass(frozen=True)
class Metric:
    """One number's names on each side of the seam."""

    key: str  # in the log line and in model.json's metrics
    name: (
        str  # SageMaker's metric name (MetricDefinitions, FinalMetricDataList, the registry's metric:<name>)
    )
    column: str  # ultralytics' name: results.csv column, trainer.metrics / validator results_dict key


# Order is the order printed.
METRICS: tuple[Metric, ...] = (
    Metric("train_box_loss", "train:box_loss", "train/box_loss"),
    Metric("train_cls_loss", "train:cls_loss", "train/cls_loss"),
    Metric("train_dfl_loss", "train:dfl_loss", "train/dfl_loss"),
    Metric("val_box_loss", "val:box_loss", "val/box_loss"),
    Metric("val_cls_loss", "val:cls_loss", "val/cls_loss"),
    Metric("val_dfl_loss", "val:dfl_loss", "val/dfl_loss"),
    Metric("precision", "val:precision", "metrics/precision(B)"),
    Metric("recall", "val:recall", "metrics/recall(B)"),
    Metric("mAP50", "val:mAP50", "metrics/mAP50(B)"),
    Metric("mAP50-95", "val:mAP50-95", "metrics/mAP50-95(B)"),
)
BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}
TRAIN_LOSSES: tuple[Metric, ...] = tuple(m for m in METRICS if m.column.startswith("train/"))
VAL_LOSSES: tuple[Metric, ...] = tuple(m for m in METRICS if m.column.startswith("val/"))
# What describes a model rather than an epoch: model.json's metrics, the int8 gate's comparison.
MODEL_METRICS: tuple[Metric, ...] = tuple(m for m in METRICS if m not in TRAIN_LOSSES + VAL_LOSSES)
# The model's one quality number: the registrar approves a version on it, the int8 gate compares it.
QUALITY_KEY = "mAP50-95"
QUALITY_METRIC = BY_KEY[QUALITY_KEY].name

# (key in the log line, SageMaker metric name), derived from METRICS.
FIELDS: tuple[tuple[str, str], ...] = tuple((m.key, m.name) for m in METRICS)
KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

# Each regex is anchored on the prefix and a space before the key, so "mAP50=" never matches "mAP50-95=" and
# "box_loss" never matches both train and val.
# The int8 step's numbers (one line, printed before the final line when training quantized the model):
#   [metrics] int8 int8_shipped=1 int8_mAP50-95=0.51 int8_drop=0.004 int8_drop_upper=0.009 int8_agreement=0.97
# Their keys start with "int8_", so no regex above matches them (each needs a space right before its key).
INT8 = "int8"
INT8_FIELDS: tuple[tuple[str, str], ...] = (
    ("int8_shipped", "int8:shipped"),  # 1 shipped, 0 not (rejected, underpowered or failed)
    ("int8_mAP50", "int8:mAP50"),
    ("int8_mAP50-95", "int8:mAP50-95"),
    ("int8_drop", "int8:mAP50-95_drop"),  # fp32 - int8 on the val split
    (
        "int8_drop_upper",
        "int8:mAP50-95_drop_upper",
    ),  # the bootstrap's upper bound, what the gate holds to its bar
    ("int8_agreement", "int8:agreement"),  # label-free: fp32 vs int8 boxes
)
INT8_KEYS: tuple[str, ...] = tuple(key for key, _ in INT8_FIELDS)

# The champion comparison's numbers (app/contracts/comparison.py; one line, printed before the final line when the
# job had a champion channel):
#   [metrics] comparison comparison_verdict=-1 comparison_difference=-0.08 comparison_ci_low=-0.12 ...
# The verdict as a number, so a CloudWatch metric can carry it: 1 better, 0 not_worse, -1 worse (nan when the
# comparison failed: SageMaker's regex then matches nothing and the metric is absent).
# CreateTrainingJob takes at most 40 MetricDefinitions (AlgorithmSpecification.MetricDefinitions, "Maximum number of
# 40 items": https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AlgorithmSpecification.html); names up to
# 255 and regexes up to 500 characters (https://docs.aws.amazon.com/sagemaker/latest/dg/API_MetricDefinition.html).
MAX_METRIC_DEFINITIONS = 40
COMPARISON = "comparison"
VERDICT_VALUES: dict[str, float] = {"better": 1.0, "not_worse": 0.0, "worse": -1.0}
COMPARISON_FIELDS: tuple[tuple[str, str], ...] = (
    ("comparison_verdict", "comparison:verdict"),
    ("comparison_difference", "comparison:mAP50-95_difference"),  # candidate - champion, shared classes
    ("comparison_ci_low", "comparison:mAP50-95_ci_low"),
    ("comparison_ci_high", "comparison:mAP50-95_ci_high"),
    (
        "comparison_worse_classes",
        "comparison:worse_classes",
    ),  # how many classes are worse beyond the tolerance
)
COMPARISON_KEYS: tuple[str, ...] = tuple(key for key, _ in COMPARISON_FIELDS)

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "epoch", "Regex": re.escape(PREFIX) + r" epoch=([0-9]+)/"},
    *(
        {"Name": name, "Regex": re.escape(PREFIX) + r" (?:.*? )?" + re.escape(key) + "=" + _NUMBER}
        for key, name in FIELDS
    ),
    *(
        {
            "Name": name,
            "Regex": re.escape(f"{PREFIX} {INT8} ") + r"(?:.*? )?" + re.escape(key) + "=" + _NUMBER,
        }
        for key, name in INT8_FIELDS
    ),
    *(
        {
            "Name": name,
            "Regex": re.escape(f"{PREFIX} {COMPARISON} ") + r"(?:.*? )?" + re.escape(key) + "=" + _NUMBER,
        }
        for key, name in COMPARISON_FIELDS
    ),
]


class MetricNameError(ContractError):
    """ultralytics' numbers lack a name of the METRICS table (an ultralytics rename): fail, never ship NaN."""


def from_ultralytics(
    values: Mapping[str, Any], *, metrics: Iterable[Metric] = METRICS, source: str
) -> dict[str, float]:
    """``{our key: value}`` of ``metrics`` from ``values`` keyed by ultralytics' names; raise MetricNameError naming
    every missing ultralytics name, ``source`` and the names that were there."""
    wanted = tuple(metrics)
    missing = [m.column for m in wanted if m.column not in values]
    if missing:
        raise MetricNameError(
            f"{source}: no {missing} among ultralytics' names {sorted(values)}; app/contracts/metrics.py METRICS "
            "maps ultralytics' names to ours - update it for this ultralytics version"
        )
    return {m.key: float(values[m.column]) for m in wanted}


def format_value(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.6g}"


def _body(values: Mapping[str, float], what: str) -> str:
    missing = [k for k in KEYS if k not in values]
    if missing:
        raise KeyError(f"{what} is missing {missing}")
    return " ".join(f"{k}={format_value(float(values[k]))}" for k in KEYS)


def format_epoch_line(epoch: int, epochs: int, values: Mapping[str, float]) -> str:
    """Render one epoch's metrics; every key in KEYS must be present (nan where unknown)."""
    return f"{PREFIX} epoch={epoch}/{epochs} {_body(values, 'metric line')}"


def format_final_line(values: Mapping[str, float]) -> str:
    """Render the shipped model's metrics (printed once, after the last epoch line); same keys as an epoch line."""
    return f"{PREFIX} {FINAL} {_body(values, 'final metric line')}"


def is_epoch_line(line: str) -> bool:
    return line.startswith(f"{PREFIX} epoch=")


def is_final_line(line: str) -> bool:
    return line.startswith(f"{PREFIX} {FINAL} ")


def parse_line(line: str) -> dict[str, float] | None:
    """Apply METRIC_DEFINITIONS to one log line, as SageMaker would; None when it is not a metric line."""
    if not line.startswith(PREFIX):
        return None
    out: dict[str, float] = {}
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], line)
        if match:
            out[definition["Name"]] = float(match.group(1))
    return out


def parse_epoch_line(line: str) -> dict[str, float] | None:
    """:func:`parse_line` for a per-epoch line; None for any other line (the final line included)."""
    return parse_line(line) if is_epoch_line(line) else None


def parse_final_line(line: str) -> dict[str, float] | None:
    """:func:`parse_line` for the final (shipped model) line; None for any other line."""
    return parse_line(line) if is_final_line(line) else None


def format_int8_line(values: Mapping[str, float]) -> str:
    """Render the int8 step's numbers (INT8_FIELDS; nan where the step did not measure one)."""
    missing = [k for k in INT8_KEYS if k not in values]
    if missing:
        raise KeyError(f"int8 metric line is missing {missing}")
    return f"{PREFIX} {INT8} " + " ".join(f"{k}={format_value(float(values[k]))}" for k in INT8_KEYS)


def is_int8_line(line: str) -> bool:
    return line.startswith(f"{PREFIX} {INT8} ")


def parse_int8_line(line: str) -> dict[str, float] | None:
    """:func:`parse_line` for the int8 line; None for any other line."""
    return parse_line(line) if is_int8_line(line) else None


def format_comparison_line(values: Mapping[str, float]) -> str:
    """Render the champion comparison's numbers (COMPARISON_FIELDS; nan where it measured none)."""
    missing = [k for k in COMPARISON_KEYS if k not in values]
    if missing:
        raise KeyError(f"comparison metric line is missing {missing}")
    return f"{PREFIX} {COMPARISON} " + " ".join(
        f"{k}={format_value(float(values[k]))}" for k in COMPARISON_KEYS
    )


def is_comparison_line(line: str) -> bool:
    return line.startswith(f"{PREFIX} {COMPARISON} ")


def parse_comparison_line(line: str) -> dict[str, float] | None:
    """:func:`parse_line` for the comparison line; None for any other line."""
    return parse_line(line) if is_comparison_line(line) else None
