"""The registrar's evidence: the champion comparison the training container wrote into model.json
(app/contracts/comparison.py), read from the job's model.tar.gz, judged against the stage's tolerances, and attached
to the model package version the SageMaker way (a ModelMetrics report file in S3, its PNGs linked from the metadata).

The archive is streamed (``tarfile`` ``r|gz``) and left as soon as model.json and the report files it names were
read: a model.tar.gz holds the weights too, and the registrar needs none of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import dataclass, field
from typing import IO, Any

from pydantic import ValidationError

from app.contracts.artifact import MODEL_JSON
from app.contracts.comparison import Comparison, Difference, Tolerances

MAX_CARD_BYTES = 1 << 20  # model.json is a few KB; a larger member is not ours
MAX_REPORT_BYTES = 8 << 20  # one comparison PNG
MAX_REPORTS = 16
REPORTS_DIR = "comparison/"
COMPARISON_JSON = "comparison.json"
_LISTED_CLASSES = 5  # worse classes named in the description (the rest: comparison.json)
# CustomerMetadataProperties keys and values: 1-128 / 1-256 characters of letters, numbers, spaces and _.:/=+-@
# (CreateModelPackage, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html).
_METADATA_UNSAFE = re.compile(r"[^\w .:/=+@-]")


class EvidenceError(ValueError):
    """The archive cannot be read as a model.tar.gz with a model.json (the message names the file and why)."""


@dataclass(frozen=True)
class Evidence:
    """What the job's model.tar.gz says about the champion: ``comparison`` or, when there is none, ``problem``."""

    comparison: Comparison | None
    problem: str = ""
    reports: dict[str, bytes] = field(default_factory=dict)  # archive path -> bytes of a comparison PNG


def _named_reports(card: bytes) -> set[str]:
    try:
        reports = (json.loads(card).get("comparison") or {}).get("reports") or {}
        return {str(path).removeprefix("./") for path in reports.values()}
    except (ValueError, AttributeError):
        return set()


def scan(stream: IO[bytes], where: str) -> tuple[bytes, dict[str, bytes]]:
    """(model.json bytes, comparison PNGs) from a gzipped tar stream; stops once model.json and the reports it
    names were read. Raises EvidenceError naming ``where``."""
    card: bytes | None = None
    wanted: set[str] = set()
    reports: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if not member.isfile():
                    continue
                if name == MODEL_JSON:
                    if member.size > MAX_CARD_BYTES:
                        raise EvidenceError(
                            f"{where}: {MODEL_JSON} is {member.size} bytes, expected at most {MAX_CARD_BYTES}"
                        )
                    card = _read(archive, member)
                    wanted = _named_reports(card)
                elif (
                    name.startswith(REPORTS_DIR)
                    and name.endswith(".png")
                    and ".." not in name
                    and member.size <= MAX_REPORT_BYTES
                    and len(reports) < MAX_REPORTS
                ):
                    reports[name] = _read(archive, member)
                if card is not None and wanted <= reports.keys():
                    break
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EvidenceError(f"{where}: not a readable gzipped tar ({exc})") from None
    if card is None:
        raise EvidenceError(f"{where}: no {MODEL_JSON} at the archive's root")
    return card, {name: data for name, data in reports.items() if name in wanted}


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = archive.extractfile(member)
    return extracted.read() if extracted is not None else b""


def read(s3: Any, model_data_uri: str) -> Evidence:
    """The comparison in the job's model.tar.gz (``s3://bucket/key``), or why there is none."""
    bucket, _, key = model_data_uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        card, reports = scan(body, model_data_uri)
    except EvidenceError as exc:
        return Evidence(None, str(exc))
    finally:
        body.close()
    try:
        raw = json.loads(card).get("comparison")
    except (ValueError, AttributeError) as exc:
        return Evidence(None, f"{model_data_uri}: {MODEL_JSON} is not a JSON object ({exc})")
    if raw is None:
        return Evidence(None, f"{MODEL_JSON} has no comparison (a job from before the champion comparison)")
    try:
        return Evidence(Comparison.model_validate(raw), reports=reports)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Evidence(None, f"{MODEL_JSON}: comparison.{where}: {first['msg']}")


def looser(used: Tolerances, stage: Tolerances) -> list[str]:
    """The tolerances of ``used`` that are looser than the stage's (each named with both values)."""
    problems = [
        f"{name} {getattr(used, name)} > {getattr(stage, name)}"
        for name in ("map_drop_tolerance", "class_drop_tolerance", "min_class_instances")
        if getattr(used, name) > getattr(stage, name)
    ]
    if used.confidence < stage.confidence:
        problems.append(f"confidence {used.confidence} < {stage.confidence}")
    return problems


def _difference(name: str, d: Difference) -> str:
    return f"{name} {d.difference:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] ({d.champion:.4f} -> {d.candidate:.4f})"


def judge(evidence: Evidence, stage: Tolerances, approved_now: str | None) -> tuple[bool, str]:
    """(may be approved automatically, why in one line). ``approved_now``: the stage's latest Approved version, read
    only when the job says it had no champion (a request may opt out; that is no evidence)."""
    c = evidence.comparison
    if c is None:
        return False, f"no champion comparison ({evidence.problem}): review by hand"
    if c.status == "failed":
        return (
            False,
            f"the champion comparison failed ({c.reason or c.why or 'no reason given'}): review by hand",
        )
    if c.status == "no_champion":
        if approved_now:
            return False, (
                f"not compared with the stage's Approved version {approved_now} ({c.reason or 'no reason given'}): "
                "review by hand"
            )
        return True, f"first model of the stage: no champion to compare with ({c.reason or 'none Approved'})"
    assert (
        c.tolerances is not None and c.overall is not None and c.champion is not None
    )  # the contract's rule
    versus = f"champion {c.champion.version.split(':model-package/')[-1]}"  # <group>/<version> of an ARN
    problems = looser(c.tolerances, stage)
    if problems:
        return (
            False,
            f"compared with {versus} under tolerances looser than the stage's ({'; '.join(problems)}): review by hand",
        )
    level = f"{c.tolerances.confidence:.0%} CI"
    if c.verdict == "worse":
        named = [_difference(n, c.classes[n]) for n in c.worse_classes[:_LISTED_CLASSES] if n in c.classes]
        more = len(c.worse_classes) - len(named)
        parts = [f"overall {_difference(c.metric, c.overall)}", *named]
        if more:
            parts.append(f"+{more} more classes in {COMPARISON_JSON}")
        return False, f"worse than {versus} ({level}): {'; '.join(parts)}: review by hand"
    return True, f"{c.verdict} vs {versus}: overall {_difference(c.metric, c.overall)} ({level})"


def _metadata_safe(text: str, limit: int) -> str:
    return _METADATA_UNSAFE.sub("_", text)[:limit]


def publish(s3: Any, evidence: Evidence, prefix_uri: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Write comparison.json and the report PNGs under ``prefix_uri`` (``s3://bucket/.../evaluation/``); return
    (CreateModelPackage ModelMetrics, CustomerMetadataProperties linking them)."""
    assert evidence.comparison is not None
    bucket, _, prefix = prefix_uri.removeprefix("s3://").partition("/")
    body = evidence.comparison.model_dump_json(indent=2).encode()
    s3.put_object(Bucket=bucket, Key=f"{prefix}{COMPARISON_JSON}", Body=body, ContentType="application/json")
    report_uri = f"s3://{bucket}/{prefix}{COMPARISON_JSON}"
    metadata = {
        "comparison:status": evidence.comparison.status,
        "comparison:verdict": evidence.comparison.verdict or "none",
        "comparison:report": _metadata_safe(report_uri, 256),
    }
    by_path = {path: kind for kind, path in evidence.comparison.reports.items()}
    for path, data in sorted(evidence.reports.items()):
        key = f"{prefix}{path.removeprefix(REPORTS_DIR)}"
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/png")
        kind = by_path.get(path, path.rsplit("/", 1)[-1])
        metadata[_metadata_safe(f"comparison:{kind}", 128)] = _metadata_safe(f"s3://{bucket}/{key}", 256)
    # ModelMetrics.ModelQuality.Statistics is a MetricsSource: ContentType and S3Uri required, ContentDigest
    # optional (CreateModelPackage, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricsSource.html).
    metrics = {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": report_uri,
                "ContentDigest": f"sha256:{hashlib.sha256(body).hexdigest()}",
            }
        }
    }
    return metrics, metadata
