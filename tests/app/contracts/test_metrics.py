"""The MetricDefinitions regexes (what SageMaker applies to the training log) against real training log lines."""

from __future__ import annotations

import math
import re

import pytest

from app.contracts.errors import ContractError
from app.contracts.metrics import (
    BY_KEY,
    COMPARISON_FIELDS,
    FIELDS,
    INT8_FIELDS,
    INT8_KEYS,
    KEYS,
    METRIC_DEFINITIONS,
    METRICS,
    MODEL_METRICS,
    PREFIX,
    QUALITY_KEY,
    QUALITY_METRIC,
    MetricNameError,
    format_epoch_line,
    format_final_line,
    format_int8_line,
    from_ultralytics,
    is_epoch_line,
    is_final_line,
    parse_epoch_line,
    parse_final_line,
    parse_int8_line,
)
from tests.fixtures.artifacts import TrainingRun

# Captured verbatim from `python -m app.training train` (tiny shapes dataset, 2 epochs, CPU) with the lines of
# ultralytics' own log around it, which must not match.
REAL_LOG = """\
                   all          8         11    0.00457      0.367    0.00369    0.00123
[checkpoint] epoch 1 saved to /tmp/t1/checkpoints/last.pt
[metrics] epoch=1/2 train_box_loss=3.34275 train_cls_loss=4.37732 train_dfl_loss=2.21047 val_box_loss=2.28638 \
val_cls_loss=4.25013 val_dfl_loss=1.55043 precision=0.00457 recall=0.36667 mAP50=0.00369 mAP50-95=0.00123
      Epoch    GPU_mem   box_loss   cls_loss   dfl_loss  Instances       Size
        2/2         0G      3.072      4.251      2.166         11        160: 100% 3/3 3.3it/s 0.9s
"""
NAMES = ["epoch", *(name for _, name in FIELDS)]
INT8_NAMES = [name for _, name in INT8_FIELDS]
COMPARISON_NAMES = [name for _, name in COMPARISON_FIELDS]


def _sagemaker_values(log: str) -> dict[str, list[float]]:
    """What SageMaker does: every regex over every line, first group as the value."""
    found: dict[str, list[float]] = {d["Name"]: [] for d in METRIC_DEFINITIONS}
    for line in log.splitlines():
        for definition in METRIC_DEFINITIONS:
            match = re.search(definition["Regex"], line)
            if match:
                found[definition["Name"]].append(float(match.group(1)))
    return found


def test_every_metric_matches_the_real_line_exactly_once() -> None:
    found = _sagemaker_values(REAL_LOG)
    assert {name: len(values) for name, values in found.items()} == {
        **dict.fromkeys(NAMES, 1),
        **dict.fromkeys(INT8_NAMES, 0),  # the int8 numbers have a line of their own
        **dict.fromkeys(COMPARISON_NAMES, 0),  # so do the champion comparison's
    }


def test_regexes_pick_the_right_value_for_lookalike_keys() -> None:
    found = _sagemaker_values(REAL_LOG)
    assert found["val:mAP50"] == [0.00369]  # not mAP50-95's value
    assert found["val:mAP50-95"] == [0.00123]
    assert found["train:box_loss"] == [3.34275]  # not val_box_loss
    assert found["val:box_loss"] == [2.28638]
    assert found["epoch"] == [1.0]


def test_metric_names_are_valid_for_sagemaker() -> None:
    # SageMaker: Name 1-255 chars of [\w:.\-/ ]... regex <= 500 chars
    for definition in METRIC_DEFINITIONS:
        assert re.fullmatch(r".{1,255}", definition["Name"])
        assert len(definition["Regex"]) <= 500


def test_format_then_parse_round_trips_every_field() -> None:
    values = {key: 0.1 * (i + 1) for i, (key, _) in enumerate(FIELDS)}
    parsed = parse_epoch_line(format_epoch_line(7, 9, values))
    assert parsed is not None
    assert parsed["epoch"] == 7
    assert [parsed[name] for _, name in FIELDS] == pytest.approx(list(values.values()))


def test_nan_is_printed_and_not_reported_as_a_number() -> None:
    values = {key: float("nan") for key, _ in FIELDS}
    line = format_epoch_line(1, 1, values)
    assert "mAP50=nan" in line
    assert set(parse_epoch_line(line) or {}) == {"epoch"}


def test_ultralytics_progress_lines_are_not_metric_lines() -> None:
    for line in REAL_LOG.splitlines():
        if not line.startswith(PREFIX):
            assert parse_epoch_line(line) is None
            assert not any(re.search(d["Regex"], line) for d in METRIC_DEFINITIONS)


def test_final_line_sets_every_final_value_but_epoch() -> None:
    epoch = format_epoch_line(2, 2, dict.fromkeys(KEYS, 0.5))
    final = format_final_line({key: 0.1 * (i + 1) for i, key in enumerate(KEYS)})
    found = _sagemaker_values(f"{epoch}\n{final}\n")
    assert found["epoch"] == [2.0]  # the final line is not an epoch
    # SageMaker keeps the last value: the final line's, each under its own key (mAP50 != mAP50-95, train != val)
    assert [found[name][-1] for _, name in FIELDS] == pytest.approx([0.1 * (i + 1) for i in range(len(KEYS))])


def test_epoch_and_final_lines_are_told_apart() -> None:
    epoch = format_epoch_line(1, 3, dict.fromkeys(KEYS, 0.5))
    final = format_final_line(dict.fromkeys(KEYS, 0.5))
    assert is_epoch_line(epoch) and not is_final_line(epoch) and parse_final_line(epoch) is None
    assert is_final_line(final) and not is_epoch_line(final) and parse_epoch_line(final) is None
    assert set(parse_final_line(final) or {}) == {name for _, name in FIELDS}


@pytest.mark.slow
def test_session_training_run_lines_parse_with_finite_values(trained_run: TrainingRun) -> None:
    lines = [line for line in trained_run.output.splitlines() if is_epoch_line(line)]
    assert len(lines) == 2
    for line in lines:
        parsed = _sagemaker_values(line)
        assert all(len(parsed[name]) == 1 and math.isfinite(parsed[name][0]) for name in NAMES), line
    finals = [line for line in trained_run.output.splitlines() if is_final_line(line)]
    assert len(finals) == 1 and all(math.isfinite(v) for v in (parse_final_line(finals[0]) or {}).values())
    (int8,) = [line for line in trained_run.output.splitlines() if line.startswith(f"{PREFIX} int8 ")]
    parsed_int8 = parse_int8_line(int8) or {}
    assert set(parsed_int8) == set(INT8_NAMES) and all(math.isfinite(v) for v in parsed_int8.values()), int8


# ultralytics' names, as the trainer has them
ULTRALYTICS_EPOCH = {m.column: 0.1 * i for i, m in enumerate(METRICS)}


def test_one_table_gives_every_derived_name() -> None:
    assert [m.key for m in MODEL_METRICS] == ["precision", "recall", "mAP50", "mAP50-95"]
    assert QUALITY_METRIC == "val:mAP50-95" == BY_KEY[QUALITY_KEY].name


def test_from_ultralytics_maps_every_name_onto_ours() -> None:
    assert from_ultralytics(ULTRALYTICS_EPOCH, source="test") == {
        m.key: 0.1 * i for i, m in enumerate(METRICS)
    }


def test_a_renamed_ultralytics_column_fails_loudly_instead_of_a_nan_metric() -> None:
    renamed = {k.replace("mAP50-95(B)", "mAP50-95(Box)"): v for k, v in ULTRALYTICS_EPOCH.items()}
    with pytest.raises(MetricNameError, match=re.escape("no ['metrics/mAP50-95(B)']")) as caught:
        from_ultralytics(renamed, metrics=MODEL_METRICS, source="final metrics of best.pt")
    assert "metrics/mAP50-95(Box)" in str(caught.value)  # what ultralytics has instead, to fix the table
    assert isinstance(caught.value, ContractError)  # the job fails with the reason in its failure file


def test_the_registrar_approves_on_the_tables_quality_metric() -> None:
    from app.launcher import registrar

    assert registrar.QUALITY_METRIC is QUALITY_METRIC
    assert registrar.approval({QUALITY_METRIC: 0.9}, 0.5)[0] == "Approved"


def test_the_release_records_the_same_quality_metric() -> None:
    from infra import release_record as release

    assert release.QUALITY_METRIC is QUALITY_METRIC


def test_the_int8_line_sets_only_the_int8_metrics() -> None:
    """The int8 numbers as SageMaker metrics; they never overwrite the shipped (fp32) model's final values."""
    values = {key: 0.01 * (i + 1) for i, key in enumerate(INT8_KEYS)}
    int8 = format_int8_line(values)
    final = format_final_line(dict.fromkeys(KEYS, 0.5))
    found = _sagemaker_values(f"{int8}\n{final}\n")
    assert [found[name] for _, name in INT8_FIELDS] == [[v] for v in values.values()]
    assert all(found[name] == [0.5] for _, name in FIELDS)  # mAP50-95= etc. did not match int8_mAP50-95=
    assert parse_int8_line(int8) == {name: values[key] for key, name in INT8_FIELDS}
    assert parse_int8_line(final) is None
