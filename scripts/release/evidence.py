"""The evidence a release's preflight shows next to its gates: the champion comparison the training job wrote
(``model.json["comparison"]``, app/contracts/comparison.py) and the replay of production traffic that
``release compare`` wrote (scripts/lib/replay/).

Gating (docs/releasing.md, "Promotion by evidence"):

- comparison ``worse`` fails the preflight unless a person approved the package: ``ModelApprovalStatus`` Approved
  with an ``ApprovalDescription`` (``release approve --reason`` or the Studio approval comment; the registrar's
  automatic approval writes none, it describes the package in ``ModelPackageDescription``). The rule is the same at
  every stage: each deploys the same release, and the first preflight that sees it (Staging) stops it.
- ``better``, ``not_worse``, ``no_champion``, ``failed`` (the comparison is an optional step) and a model written
  before comparisons existed pass, printed for the person reading;
- the replay report is informational (agreement without labels is no verdict), but a report about other models than
  the release's is refused: it would be read as evidence for this one.

The report is the file ``--replay-report`` names, else ``releases/replay/<release id>.json`` when it exists (the
operator copies compare's ``replay.json`` there and commits it, so the pipeline's preflight finds it).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.contracts.artifact import MODEL_JSON
from app.contracts.comparison import Comparison
from infra.release_record import Release
from scripts.lib.endpoint_checks import Report
from scripts.lib.replay.report import ReportError, load_report

REPLAY_FOLDER = "replay"  # releases/replay/<release id>.json


def replay_report_path(releases_dir: Path, release: Release, given: Path | None) -> Path | None:
    if given is not None:
        return given
    stored = releases_dir / REPLAY_FOLDER / f"{release.release_id}.json"
    return stored if stored.is_file() else None


def read_model_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """model.json of a model.tar.gz, streamed: the archive is read only up to that member, never written to disk."""
    where = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        raise ValueError(f"{where}: does not exist, so its {MODEL_JSON} cannot be read") from None
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if Path(member.name).name == MODEL_JSON and member.isfile():
                    extracted = archive.extractfile(member)
                    card = json.loads(extracted.read()) if extracted else None
                    if not isinstance(card, dict):
                        raise ValueError(f"{where}: {MODEL_JSON} is not a JSON object")
                    return card
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: not a readable model.tar.gz ({exc})") from None
    raise ValueError(f"{where}: no {MODEL_JSON} in the archive (not a model artifact)")


def approved_by_a_person(status: str, description: object) -> str | None:
    """The approval description of an Approved package (a person's words), or None (automatic, or not Approved).
    ``description``: DescribeModelPackage's ApprovalDescription (the SDK's Unassigned() when there is none)."""
    if status != "Approved" or not isinstance(description, str):
        return None
    return description.strip() or None


def comparison_check(
    report: Report, release: Release, *, s3: Any, approval: Callable[[], tuple[str, object]]
) -> None:
    """The comparison block: verdict, overall difference with its CI, worse and underpowered classes.
    ``approval``: the package's (ModelApprovalStatus, ApprovalDescription), asked only for a ``worse`` verdict."""
    model = release.model
    try:
        card = read_model_json(s3, model.bucket, model.key)
    except ValueError as exc:
        report.add("comparison", False, str(exc))
        return
    if card.get("comparison") is None:
        report.add(
            "comparison",
            True,
            "none: the model was trained before comparisons existed (no champion evidence)",
        )
        return
    try:
        comparison = Comparison.model_validate(card["comparison"])
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in ("comparison", *first["loc"]))
        report.add(
            "comparison", False, f"{model.model_data_uri}: {MODEL_JSON} field '{field}': {first['msg']}"
        )
        return
    if comparison.status != "compared":
        report.add(
            "comparison",
            True,
            f"{comparison.status}: {comparison.reason or comparison.why or 'no reason given'}",
        )
        return
    overall = comparison.overall
    assert overall is not None and comparison.champion is not None  # the contract's validator
    confidence = f"{comparison.tolerances.confidence:.0%} " if comparison.tolerances else ""
    detail = (
        f"{comparison.verdict} vs {comparison.champion.version}: {comparison.metric} "
        f"{overall.candidate:.4f} vs {overall.champion:.4f}, difference {overall.difference:+.4f} "
        f"({confidence}CI {overall.ci_low:+.4f} .. {overall.ci_high:+.4f}, {comparison.images} val images)"
    )
    for name, classes in (
        ("worse", comparison.worse_classes),
        ("underpowered", comparison.underpowered_classes),
        ("new", comparison.new_classes),
        ("gone", comparison.gone_classes),
    ):
        if classes:
            shown = [
                f"{c} {comparison.classes[c].difference:+.4f}"
                if c in comparison.classes and name == "worse"
                else c
                for c in classes
            ]
            detail += f"; {name} classes: {', '.join(shown)}"
    if comparison.verdict != "worse":
        report.add("comparison", True, detail)
        return
    person = approved_by_a_person(*approval())
    if person:
        report.add("comparison", True, f'{detail}; approved by a person: "{person[:200]}"')
    else:
        report.add(
            "comparison",
            False,
            f"{detail}; the package was approved without a person's approval description: review the comparison, "
            f"then python -m scripts.release approve --stage <registry stage> --version {model.package_version} "
            "--reason '...' (or reject it)",
        )


def replay_check(report: Report, release: Release, path: Path | None) -> None:
    """The replay figures of ``path`` (informational), refused when they are about other models."""
    if path is None:
        report.add(
            "replay",
            True,
            "no replay report (python -m scripts.release compare --stage <earlier stage>, then copy its replay.json "
            f"to releases/{REPLAY_FOLDER}/{release.release_id}.json or pass --replay-report)",
        )
        return
    try:
        replay = load_report(path)
    except ReportError as exc:
        report.add("replay", False, str(exc))
        return
    if replay.candidate.model_data != release.model.model_data_uri:
        report.add(
            "replay",
            False,
            f"{path}: field 'candidate.model_data': the replay ran {replay.candidate.model_data}, the release "
            f"deploys {release.model.model_data_uri}: run release compare for this release",
        )
        return
    report.add("replay", True, f"vs {replay.champion.label}: {replay.summary()}")
