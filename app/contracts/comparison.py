"""The champion comparison (training -> registrar -> release): ``model.json["comparison"]``.

After training, the container scores the candidate and the stage's champion (the Approved model it would replace,
passed in as the ``champion`` channel) on the same val split with the same validator, and records per class (by
class name) and overall both mAP50-95 values, the paired difference ``candidate - champion`` and its bootstrap
confidence interval over val images (a two-sided percentile interval at ``tolerances.confidence``; each model
scored at its own imgsz). The verdict follows the rule below with the tolerances the job was given (the
stage's settings, infra/stages.py ``training.champion_*_tolerance``); the registrar approves automatically only when
the verdict is not ``worse`` and the tolerances are no looser than its stage's.

The rule (one definition, :func:`verdict_of`), the same spirit as the int8 gate (ship only on evidence):

- a class is ``worse`` when it has at least ``min_class_instances`` val instances and the lower bound of its
  difference is below ``-class_drop_tolerance`` (we cannot say with confidence that it lost no more than the
  tolerance); a class with fewer instances is ``underpowered``: listed, never decisive;
- overall is ``worse`` when the lower bound of the overall difference is below ``-map_drop_tolerance``;
- ``worse`` if overall or any class is worse; else ``better`` when the overall lower bound is above 0; else
  ``not_worse``.

Classes only the candidate knows are ``new_classes``, classes only the champion knows are ``gone_classes``; the
difference is computed on the shared classes only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ComparisonStatus = Literal["compared", "no_champion", "failed"]
Verdict = Literal["better", "not_worse", "worse"]
COMPARISON_METRIC = "mAP50-95"


class ChampionRef(BaseModel):
    """The model the candidate would replace."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, description="its model package ARN, else its training job name")
    model_data: str = Field(min_length=1, description="s3:// URI of its model.tar.gz")


class Difference(BaseModel):
    """One class (or overall) scored for both models on the same images: ``difference = candidate - champion``."""

    model_config = ConfigDict(extra="forbid")
    champion: float
    candidate: float
    difference: float
    ci_low: float
    ci_high: float
    instances: int = Field(ge=0, description="val instances of this class (overall: all shared classes)")

    @model_validator(mode="after")
    def _ordered(self) -> Difference:
        if not self.ci_low <= self.ci_high:
            raise ValueError(f"ci_low {self.ci_low} > ci_high {self.ci_high}")
        return self


class Tolerances(BaseModel):
    model_config = ConfigDict(extra="forbid")
    map_drop_tolerance: float = Field(ge=0, le=1)
    class_drop_tolerance: float = Field(ge=0, le=1)
    min_class_instances: int = Field(ge=1)
    confidence: float = Field(gt=0, lt=1)


class Comparison(BaseModel):
    """``model.json["comparison"]``. ``status``: ``compared``; ``no_champion`` (the stage had no Approved model,
    or none was passed; ``reason`` says which); ``failed`` (the comparison itself failed - an optional step: the
    model ships all the same, and the registrar leaves it for a person)."""

    model_config = ConfigDict(extra="allow")
    status: ComparisonStatus
    reason: str = ""
    champion: ChampionRef | None = None
    metric: str = COMPARISON_METRIC
    tolerances: Tolerances | None = None
    images: int = Field(0, ge=0, description="val images both models were scored on")
    resamples: int = Field(0, ge=0, description="bootstrap resamples over those images")
    seed: int | None = Field(None, description="the bootstrap's random seed")
    imgsz: dict[str, int] = Field(
        default_factory=dict,
        description="{'candidate': ..., 'champion': ...}: each model is scored at its own imgsz",
    )
    overall: Difference | None = None
    classes: dict[str, Difference] = Field(default_factory=dict)
    new_classes: list[str] = Field(default_factory=list)
    gone_classes: list[str] = Field(default_factory=list)
    underpowered_classes: list[str] = Field(default_factory=list)
    unscored_classes: list[str] = Field(
        default_factory=list, description="shared classes without a val instance: no number either way"
    )
    worse_classes: list[str] = Field(default_factory=list)
    verdict: Verdict | None = None
    why: str = Field("", description="the verdict (or the status) in one line, naming the classes")
    seconds: float | None = Field(None, ge=0, description="how long the comparison took")
    reports: dict[str, str] = Field(
        default_factory=dict,
        description="report files inside the artifact, e.g. {'pr_curves': 'comparison/...png'}",
    )

    @model_validator(mode="after")
    def _verdict_iff_compared(self) -> Comparison:
        compared = self.status == "compared"
        if compared != (self.verdict is not None):
            raise ValueError("comparison.verdict is set exactly when comparison.status is 'compared'")
        if compared and (self.overall is None or self.tolerances is None or self.champion is None):
            raise ValueError("a compared comparison names its champion, tolerances and overall difference")
        return self


def verdict_of(
    overall: Difference, classes: dict[str, Difference], tolerances: Tolerances
) -> tuple[Verdict, list[str], list[str]]:
    """(verdict, worse classes, underpowered classes) by the rule in the module docstring."""
    underpowered = sorted(n for n, d in classes.items() if d.instances < tolerances.min_class_instances)
    worse = sorted(
        n for n, d in classes.items() if n not in underpowered and d.ci_low < -tolerances.class_drop_tolerance
    )
    if worse or overall.ci_low < -tolerances.map_drop_tolerance:
        return "worse", worse, underpowered
    return ("better" if overall.ci_low > 0 else "not_worse"), worse, underpowered
