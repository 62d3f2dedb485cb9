"""QA outputs warn when a class has no validation images, or fewer than MIN_VAL_IMAGES_PER_CLASS."""

from __future__ import annotations

from pathlib import Path

from app.dataprep import qa
from app.dataprep.plan import Plan, PlanOptions, build_plan
from tests.app.dataprep.ground_truth import box, record, write_manifest


def _plan(tmp_path: Path, drills: int, hammers: int) -> Plan:
    """``drills`` images of class drill (0) and ``hammers`` of class hammer (3); a fifth of them go to val."""
    classes = {"0": "drill", "3": "hammer"}
    items = [record(f"s3://b/k/d{i}.jpg", [box(0, 1, 1, 5, 5)], class_map=classes) for i in range(drills)]
    items += [record(f"s3://b/k/h{i}.jpg", [box(3, 1, 1, 5, 5)], class_map=classes) for i in range(hammers)]
    return build_plan(write_manifest(tmp_path / "m", items), PlanOptions(val_fraction=0.2))  # type: ignore[arg-type]


def _val_images(plan: Plan, name: str) -> int:
    return plan.counts_after["val"][name].images


def test_class_without_validation_images_is_warned_in_report_and_summary(tmp_path: Path) -> None:
    plan = _plan(tmp_path, drills=100, hammers=1)
    assert _val_images(plan, "hammer") == 0 and _val_images(plan, "drill") >= qa.MIN_VAL_IMAGES_PER_CLASS
    [warning] = qa.report(plan)["warnings"]  # type: ignore[misc]
    assert warning.startswith("class 'hammer' has no validation images")
    assert f"warning: {warning}" in qa.summary_text(plan)


def test_class_below_the_minimum_is_warned_with_its_count_and_the_minimum(tmp_path: Path) -> None:
    plan = _plan(tmp_path, drills=100, hammers=20)
    count = _val_images(plan, "hammer")
    assert 0 < count < qa.MIN_VAL_IMAGES_PER_CLASS
    [warning] = qa.class_warnings(plan)
    assert warning.startswith(
        f"class 'hammer' has {count} validation image(s), fewer than {qa.MIN_VAL_IMAGES_PER_CLASS}"
    )
    assert qa.report(plan)["min_val_images_per_class"] == qa.MIN_VAL_IMAGES_PER_CLASS


def test_well_covered_classes_give_no_warning(tmp_path: Path) -> None:
    plan = _plan(tmp_path, drills=100, hammers=100)
    assert qa.report(plan)["warnings"] == []
    assert "warning:" not in qa.summary_text(plan)
