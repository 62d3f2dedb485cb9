"""The evidence in a release's preflight (scripts/release/evidence.py), against moto: the champion comparison read
from model.json inside the release's model.tar.gz, gating a ``worse`` verdict no person approved, and the replay
report of ``release compare``."""

# ruff: noqa: F401, F811  (the tests take test_release_gates' registry fixture, imported below, as their argument)
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from app.contracts.comparison import ChampionRef, Comparison, Difference, Tolerances, verdict_of
from infra.release_record import Release
from scripts.lib.replay.report import Agreement, ReplayReport, Side
from scripts.release.evidence import replay_report_path
from tests.fixtures.comparisons import compared
from tests.scripts.test_release_gates import failed, model_tar_gz, registry, run_preflight

CHAMPION = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/yolo-detector-dev-1a2b3c4d/3"
TOLERANCES = Tolerances(
    map_drop_tolerance=0.01, class_drop_tolerance=0.02, min_class_instances=20, confidence=0.95
)


def diff(champion: float, candidate: float, low: float, high: float, instances: int) -> Difference:
    return Difference(
        champion=champion, candidate=candidate, difference=round(candidate - champion, 4), ci_low=low, ci_high=high,
        instances=instances,
    )  # fmt: skip


def comparison(classes: dict[str, Difference]) -> dict[str, Any]:
    overall = diff(0.61, 0.63, 0.005, 0.035, sum(d.instances for d in classes.values()))
    return compared(classes, TOLERANCES, overall=overall, champion=CHAMPION, images=400).model_dump(
        mode="json"
    )


NOT_WORSE = {"person": diff(0.70, 0.72, -0.01, 0.05, 900), "drill": diff(0.50, 0.49, -0.04, 0.03, 12)}
WORSE = {"person": diff(0.70, 0.74, 0.02, 0.06, 900), "drill": diff(0.52, 0.41, -0.16, -0.06, 80)}


def with_card(session: boto3.Session, release: Release, card: dict[str, Any]) -> Release:
    """The release's model object replaced by a model.tar.gz holding ``card``; the release names its sha256."""
    body = model_tar_gz(card)
    session.client("s3").put_object(Bucket=release.model.bucket, Key=release.model.key, Body=body)
    doc = release.model_dump(mode="json")
    doc["model"]["sha256"] = hashlib.sha256(body).hexdigest()
    return Release.model_validate(doc)


def check(report: Any, name: str) -> Any:
    [found] = [c for c in report.checks if c.name == name]
    return found


def test_preflight_for_prod_prints_the_comparison_block(registry: Any) -> None:
    session, release = registry
    release = with_card(session, release, {"name": "yolo-detector", "comparison": comparison(NOT_WORSE)})
    report = run_preflight(session, release, stage="Prod")
    assert report.ok, report.render()
    assert (
        f"PASS  comparison: better vs {CHAMPION}: mAP50-95 0.6300 vs 0.6100, difference +0.0200 (95% CI +0.0050 .. "
        "+0.0350, 400 val images); underpowered classes: drill"
    ) in report.render().splitlines()


def test_a_worse_verdict_fails_the_preflight_until_a_person_approves_the_package(registry: Any) -> None:
    session, release = registry
    release = with_card(session, release, {"name": "yolo-detector", "comparison": comparison(WORSE)})
    detail = failed(run_preflight(session, release, stage="Prod"))["comparison"]
    assert detail.startswith(f"worse vs {CHAMPION}: ") and "worse classes: drill -0.1100" in detail
    assert "approved without a person's approval description" in detail
    assert f"release approve --stage <registry stage> --version {release.model.package_version}" in detail
    session.client("sagemaker").update_model_package(
        ModelPackageArn=release.model.package_arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription="drill: the champion's val set had 40 duplicated images; reviewed by hand",
    )
    passed = check(run_preflight(session, release, stage="Prod"), "comparison")
    assert passed.ok and passed.detail.endswith(
        'approved by a person: "drill: the champion\'s val set had 40 duplicated images; reviewed by hand"'
    )


def test_a_comparison_that_is_not_one_is_refused_naming_the_field(registry: Any) -> None:
    session, release = registry
    broken = comparison(NOT_WORSE)
    del broken["verdict"]
    release = with_card(session, release, {"name": "yolo-detector", "comparison": broken})
    detail = failed(run_preflight(session, release, stage="Prod"))["comparison"]
    assert detail.startswith(f"{release.model.model_data_uri}: model.json field 'comparison'")


def replay_report(model_data: str) -> ReplayReport:
    def side(label: str, data: str) -> Side:
        return Side(label=label, model_data=data, name="yolo-detector", version=label)

    return ReplayReport(
        created_at=datetime(2026, 12, 5, 12, tzinfo=UTC), stage="Staging", endpoint="endpoint-1",
        capture="s3://a/data-capture/endpoint-1/", candidate=side("candidate", model_data),
        champion=side("r-20261130-1 (yolo-detector-dev-1a2b3c4d v3)", "s3://models/v3/model.tar.gz"), iou=0.5,
        conf=0.25, asked=200, requests=197, images=197, skipped_synthetic=41, files=3,
        first_time="2026-12-05T09:00:00Z", last_time="2026-12-05T11:59:00Z",
        overall=Agreement(matched=880, only_candidate=40, only_champion=25, agreement=0.9312),
        classes={
            "person": Agreement(matched=850, only_candidate=30, only_champion=10, agreement=0.9551),
            "drill": Agreement(matched=30, only_candidate=10, only_champion=15, agreement=0.5455),
        },
    )  # fmt: skip


def test_preflight_shows_the_replay_figures_and_refuses_a_report_of_another_model(
    registry: Any, tmp_path: Path
) -> None:
    session, release = registry
    path = tmp_path / "replay.json"
    path.write_text(replay_report(release.model.model_data_uri).model_dump_json())
    shown = check(run_preflight(session, release, stage="Prod", replay_report=path), "replay")
    assert shown.ok and shown.detail == (
        "vs r-20261130-1 (yolo-detector-dev-1a2b3c4d v3): 197 requests (197 images) of Staging from "
        "2026-12-05T09:00:00Z to 2026-12-05T11:59:00Z: agreement 0.931 (matched 880, only candidate 40, only "
        "champion 25, IoU >= 0.5); lowest class drill 0.545; 41 synthetic skipped, 0 undecodable"
    )
    path.write_text(replay_report("s3://models/someone-else/model.tar.gz").model_dump_json())
    detail = failed(run_preflight(session, release, stage="Prod", replay_report=path))["replay"]
    assert detail.startswith(
        f"{path}: field 'candidate.model_data': the replay ran s3://models/someone-else/"
    )


def test_the_replay_report_stored_next_to_the_release_is_found(registry: Any, tmp_path: Path) -> None:
    _, release = registry
    assert replay_report_path(tmp_path, release, None) is None
    stored = tmp_path / "replay" / f"{release.release_id}.json"
    stored.parent.mkdir()
    stored.write_text("{}")
    assert replay_report_path(tmp_path, release, None) == stored
    assert replay_report_path(tmp_path, release, tmp_path / "given.json") == tmp_path / "given.json"
