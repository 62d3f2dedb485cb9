"""Replay captured requests through two detectors and keep the agreement figures and the K images they disagree
on most. Each request goes through app/serving's own parsing (content type, JSON ``image``/``images``, body
options), decode and letterbox, and the detector's postprocess: what the endpoint would have answered."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.contracts.invocation import InferenceOptions
from app.serving import images, payload
from app.serving.errors import ServingError
from app.serving.model import Detector
from app.serving.settings import ServingSettings
from scripts.lib.replay import drawing
from scripts.lib.replay.capture import CapturedRequest, Unreadable
from scripts.lib.replay.matching import DEFAULT_IOU, ClassCounts, ImageAgreement, match
from scripts.lib.replay.report import Agreement, Disagreement, Problem, ReplayReport, Side

# The serving defaults (app/serving/settings.py): the same limits the endpoint applies to a request.
MAX_IMAGES = ServingSettings.model_fields["max_images"].default
MAX_PIXELS = ServingSettings.model_fields["max_image_pixels"].default


@dataclass(order=True)
class _Kept:
    """A disagreement kept for drawing; ordered so the heap's smallest is the least interesting."""

    score: tuple[float, int]
    order: int
    where: str = field(compare=False)
    event_id: str = field(compare=False)
    rgb: np.ndarray = field(compare=False)
    candidate: list[dict[str, Any]] = field(compare=False)
    champion: list[dict[str, Any]] = field(compare=False)
    agreement: ImageAgreement = field(compare=False)


@dataclass
class Replay:
    """Running totals of a replay."""

    candidate: Detector
    champion: Detector
    iou: float = DEFAULT_IOU
    keep: int = 8
    options: InferenceOptions = field(default_factory=InferenceOptions)
    classes: dict[str, ClassCounts] = field(default_factory=dict)
    requests: int = 0
    images: int = 0
    undecodable: list[Problem] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    _kept: list[_Kept] = field(default_factory=list)

    def add(self, entry: CapturedRequest | Unreadable) -> None:
        if isinstance(entry, Unreadable):
            self.undecodable.append(Problem(where=entry.where, event_id=entry.event_id, why=entry.why))
            return
        try:
            kind = payload.media_type(entry.content_type)
            parsed = payload.parse(kind, entry.body, MAX_IMAGES)
            options = payload.options(self.options, {}, parsed.body_options)
            decoded = [
                images.decode(data, max_pixels=MAX_PIXELS, what=name)
                for data, name in zip(parsed.images, parsed.names, strict=True)
            ]
        except ServingError as exc:  # what the endpoint would have answered 4xx to: named, never fatal
            self.undecodable.append(Problem(where=entry.where, event_id=entry.event_id, why=exc.message))
            return
        self.requests += 1
        if entry.inference_time:
            self.times.append(entry.inference_time)
        for rgb, name in zip(decoded, parsed.names, strict=True):
            self._image(entry, name, rgb, options)

    def _run(self, detector: Detector, rgb: np.ndarray, options: InferenceOptions) -> list[dict[str, Any]]:
        found = detector.predict(images.letterbox(rgb, detector.imgsz, detector.stride), options)[
            "detections"
        ]
        return list(found)

    def _image(self, entry: CapturedRequest, name: str, rgb: np.ndarray, options: InferenceOptions) -> None:
        self.images += 1
        candidate, champion = self._run(self.candidate, rgb, options), self._run(self.champion, rgb, options)
        agreement = match(candidate, champion, iou=self.iou)
        for label, counts in agreement.classes.items():
            self.classes.setdefault(label, ClassCounts()).add(counts)
        total = agreement.total
        unmatched = total.only_candidate + total.only_champion
        if unmatched == 0 or self.keep == 0:
            return
        where = entry.where if name == "image" else f"{entry.where} {name}"
        kept = _Kept(
            (1 - total.agreement, unmatched),
            -self.images,
            where,
            entry.event_id,
            rgb,
            candidate,
            champion,
            agreement,
        )
        if len(self._kept) < self.keep:
            heapq.heappush(self._kept, kept)
        elif kept > self._kept[0]:
            heapq.heapreplace(self._kept, kept)

    def run(self, entries: Iterable[CapturedRequest | Unreadable]) -> None:
        for entry in entries:
            self.add(entry)

    def write_disagreements(self, out: Path, legend: tuple[str, str]) -> list[Disagreement]:
        """Draw the kept images, most disagreeing first, as ``<out>/disagreements/NN-<event id>.jpg``."""
        folder = out / "disagreements"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for rank, kept in enumerate(sorted(self._kept, reverse=True), start=1):
            safe = (
                "".join(c if c.isalnum() or c in "-_" else "_" for c in kept.event_id)[:64] or "no-event-id"
            )
            path = folder / f"{rank:02d}-{safe}.jpg"
            path.write_bytes(
                drawing.draw(
                    kept.rgb,
                    candidate=kept.candidate,
                    champion=kept.champion,
                    candidate_matched=kept.agreement.candidate_matched,
                    champion_matched=kept.agreement.champion_matched,
                    legend=legend,
                )
            )
            total = kept.agreement.total
            written.append(
                Disagreement(
                    file=str(path.relative_to(out)),
                    where=kept.where,
                    event_id=kept.event_id,
                    agreement=round(total.agreement, 4),
                    only_candidate=total.only_candidate,
                    only_champion=total.only_champion,
                )
            )
        return written

    def report(
        self,
        *,
        stage: str,
        endpoint: str,
        capture: str,
        sides: tuple[Side, Side],
        asked: int,
        skipped_synthetic: int,
        files: int,
        disagreements: list[Disagreement],
    ) -> ReplayReport:
        total = ClassCounts()
        for counts in self.classes.values():
            total.add(counts)
        times = sorted(self.times)
        return ReplayReport(
            created_at=datetime.now(UTC),
            stage=stage,
            endpoint=endpoint,
            capture=capture,
            candidate=sides[0],
            champion=sides[1],
            iou=self.iou,
            conf=self.options.conf,
            asked=asked,
            requests=self.requests,
            images=self.images,
            skipped_synthetic=skipped_synthetic,
            undecodable=self.undecodable,
            first_time=times[0] if times else "",
            last_time=times[-1] if times else "",
            files=files,
            overall=_agreement(total),
            classes={name: _agreement(c) for name, c in sorted(self.classes.items())},
            disagreements=disagreements,
        )


def _agreement(counts: ClassCounts) -> Agreement:
    return Agreement(
        matched=counts.matched,
        only_candidate=counts.only_candidate,
        only_champion=counts.only_champion,
        agreement=round(counts.agreement, 4),
    )


def side(label: str, model_data: str, release_id: str | None, detector: Detector) -> Side:
    return Side(
        label=label,
        model_data=model_data,
        release_id=release_id,
        name=detector.card.name,
        version=detector.card.version,
    )
