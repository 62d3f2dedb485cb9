"""The replay report (``replay.json``): what ``release compare`` measured, and what the Prod preflight shows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPORT_FILE = "replay.json"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Agreement(_Doc):
    """Boxes of one class (or all): pairs (same class, IoU >= the bar) and boxes only one model found."""

    matched: int = Field(ge=0)
    only_candidate: int = Field(ge=0)
    only_champion: int = Field(ge=0)
    agreement: float = Field(ge=0, le=1, description="matched / (matched + only_candidate + only_champion)")


class Side(_Doc):
    """One of the two models."""

    label: str
    model_data: str = Field(description="s3:// URI of its model.tar.gz, or the local artifact")
    release_id: str | None = None
    name: str
    version: str = Field(description="model.json 'version' (what the endpoint answers as model.version)")


class Problem(_Doc):
    where: str = Field(description="s3://bucket/key:line of the capture record")
    event_id: str = ""
    why: str


class Disagreement(_Doc):
    file: str = Field(description="the drawn image, relative to the report")
    where: str
    event_id: str
    agreement: float
    only_candidate: int
    only_champion: int


class ReplayReport(_Doc):
    schema_version: Literal[1] = 1
    created_at: datetime
    stage: str
    endpoint: str
    capture: str = Field(description="s3:// prefix read (<capture destination>/<endpoint>/)")
    candidate: Side
    champion: Side
    iou: float = Field(gt=0, le=1)
    conf: float
    asked: int = Field(ge=1, description="--last N: the newest N requests that are not synthetic")
    requests: int = Field(ge=0, description="requests replayed through both models")
    images: int = Field(ge=0)
    skipped_synthetic: int = Field(
        ge=0, description="the platform's own requests (InferenceId synthetic-...)"
    )
    undecodable: list[Problem] = Field(default_factory=list)
    first_time: str = ""
    last_time: str = ""
    files: int = Field(ge=0, description="capture files opened")
    overall: Agreement
    classes: dict[str, Agreement]
    disagreements: list[Disagreement] = Field(default_factory=list)

    def summary(self) -> str:
        """One line: how many requests, the overall agreement, the least agreeing class."""
        worst = min(self.classes.items(), key=lambda kv: kv[1].agreement, default=None)
        text = (
            f"{self.requests} requests ({self.images} images) of {self.stage} from {self.first_time or '?'} to "
            f"{self.last_time or '?'}: agreement {self.overall.agreement:.3f} (matched {self.overall.matched}, only "
            f"candidate {self.overall.only_candidate}, only champion {self.overall.only_champion}, IoU >= {self.iou:g})"
        )
        if worst is not None:
            text += f"; lowest class {worst[0]} {worst[1].agreement:.3f}"
        return text + f"; {self.skipped_synthetic} synthetic skipped, {len(self.undecodable)} undecodable"

    def render(self) -> str:
        lines = [
            f"candidate: {self.candidate.label} ({self.candidate.name} {self.candidate.version})",
            f"champion:  {self.champion.label} ({self.champion.name} {self.champion.version})",
            self.summary(),
            f"{'class':<24} {'matched':>8} {'only cand.':>10} {'only champ.':>11} {'agreement':>9}",
        ]
        for name, row in sorted(self.classes.items(), key=lambda kv: kv[1].agreement):
            lines.append(
                f"{name[:24]:<24} {row.matched:>8} {row.only_candidate:>10} {row.only_champion:>11} "
                f"{row.agreement:>9.3f}"
            )
        lines += [
            f"undecodable: {p.where} ({p.event_id or 'no event id'}): {p.why}" for p in self.undecodable
        ]
        return "\n".join(lines)


class ReportError(ValueError):
    pass


def load_report(path: Path) -> ReplayReport:
    """Read a replay report; ReportError names the file and the first bad field."""
    try:
        return ReplayReport.model_validate_json(path.read_text())
    except OSError as exc:
        raise ReportError(f"{path}: cannot read the replay report ({exc.strerror})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(report)"
        raise ReportError(
            f"{path}: field '{field}': {first['msg']} (expected a replay.json written by release compare)"
        ) from None
