"""Application Auto Scaling schedule expressions (UTC), evaluated minute by minute: which minutes a scheduled
action fires in (``Schedule``), how long each action of a schedule stays in force over a reference week
(``schedule_holds``), and which action is in force at each minute of the week (``in_force_over_week``).

Shared by the stage config's schedule checks (infra/config.py) and the autoscaling simulator
(infra/scaling_simulator.py); imports neither, so the two do not import each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Protocol


class ScheduleError(ValueError):
    """A scheduled-action expression the simulator cannot evaluate."""


_DOW_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTH_NAMES = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}


def _cron_field(text: str, lo: int, hi: int, names: dict[str, int], expr: str) -> frozenset[int] | None:
    """Values a cron field allows; None for '*' or '?' (anything)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = lo, hi
        else:
            first, _, last = body.partition("-")
            try:
                start = names.get(first.upper()) or int(first)
                end = (names.get(last.upper()) or int(last)) if last else (hi if step_text else start)
            except ValueError:
                raise ScheduleError(f"{expr}: field '{text}' is not a number, name, range or list") from None
        if not lo <= start <= end <= hi:
            raise ScheduleError(f"{expr}: field '{text}' out of range {lo}..{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """An Application Auto Scaling schedule expression (UTC): ``cron(m h dom mon dow year)``, ``at(...)``,
    ``rate(n unit)``. ``fires(t)`` says whether it fires in the minute starting at t."""

    expression: str

    def __post_init__(self) -> None:
        _ = self._spec  # fail on construction, with the expression in the message

    @cached_property
    def _spec(self) -> tuple[str, object]:
        match = re.fullmatch(r"(cron|at|rate)\((.+)\)", self.expression.strip())
        if not match:
            raise ScheduleError(f"{self.expression}: expected cron(...), at(...) or rate(...)")
        kind, body = match.groups()
        if kind == "at":
            try:
                return kind, datetime.fromisoformat(body).replace(tzinfo=UTC)
            except ValueError:
                raise ScheduleError(f"{self.expression}: expected at(yyyy-mm-ddThh:mm:ss)") from None
        if kind == "rate":
            rate = re.fullmatch(r"(\d+)\s+(minute|minutes|hour|hours|day|days)", body.strip())
            if not rate:
                raise ScheduleError(f"{self.expression}: expected rate(<n> minutes|hours|days)")
            unit = {"m": 60, "h": 3600, "d": 86400}[rate.group(2)[0]]
            return kind, int(rate.group(1)) * unit
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleError(
                f"{self.expression}: cron needs 6 fields (min hour day-of-month month dow year)"
            )
        return kind, (
            _cron_field(fields[0], 0, 59, {}, self.expression),
            _cron_field(fields[1], 0, 23, {}, self.expression),
            _cron_field(fields[2], 1, 31, {}, self.expression),
            _cron_field(fields[3], 1, 12, _MONTH_NAMES, self.expression),
            _cron_field(fields[4], 1, 7, _DOW_NAMES, self.expression),
            _cron_field(fields[5], 1970, 2199, {}, self.expression),
        )

    def fires(self, t: datetime) -> bool:
        kind, spec = self._spec
        if kind == "at":
            assert isinstance(spec, datetime)
            return spec <= t < spec + timedelta(minutes=1)
        if kind == "rate":
            assert isinstance(spec, int)
            return int(t.timestamp()) % spec < 60
        assert isinstance(spec, tuple)
        dow = t.isoweekday() % 7 + 1  # AWS: 1 = SUN
        actual = (t.minute, t.hour, t.day, t.month, dow, t.year)
        return all(allowed is None or value in allowed for allowed, value in zip(spec, actual, strict=True))


class ScheduledAction(Protocol):
    """What schedule_holds reads of a scheduled action (infra.config.ScheduledCapacity)."""

    @property
    def name(self) -> str: ...

    @property
    def schedule(self) -> str: ...


# --------------------------------------------------------------------------------------------- schedule windows
@dataclass(frozen=True)
class ScheduleHold:
    """How one scheduled action holds over a reference week: its longest stretch in force (from when), and the
    longest time it stays in force without firing again."""

    longest_hold_min: int
    longest_hold_from: datetime | None
    longest_silence_min: int


def schedule_holds(scheduled: Sequence[ScheduledAction]) -> dict[str, ScheduleHold]:
    """For every action: how long it stays in force and how long it goes without re-firing, over a reference week
    (Mon 2025-01-06 UTC; the week before establishes which action is in force at its start). Cached per schedule."""
    return dict(_schedule_holds(tuple((a.name, a.schedule) for a in scheduled)))


_REFERENCE_MONDAY = datetime(2025, 1, 6, tzinfo=UTC)
WEEK_MIN = 7 * 24 * 60


def _timeline(actions: tuple[tuple[str, str], ...]) -> Iterator[tuple[int, datetime, bool, str | None]]:
    """(minute of the reference week, its time, whether an action fired in it, the action in force) for every
    minute of the week before the reference Monday (negative minutes: it establishes which action is in force) and
    of the reference week. Actions firing in the same minute: the last one listed is the one that holds."""
    schedules = [(name, Schedule(expression)) for name, expression in actions]
    current: str | None = None
    for minute in range(-WEEK_MIN, WEEK_MIN):
        t = _REFERENCE_MONDAY + timedelta(minutes=minute)
        fired = [name for name, schedule in schedules if schedule.fires(t)]
        if fired:
            current = fired[-1]
        yield minute, t, bool(fired), current


@lru_cache(maxsize=64)
def _schedule_holds(actions: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ScheduleHold], ...]:
    start = _REFERENCE_MONDAY
    current: str | None = None
    since = last_fire = start - timedelta(days=7)
    hold: dict[str, int] = {}
    hold_from: dict[str, datetime] = {}
    silence: dict[str, int] = {}
    for minute, t, fired, in_force in _timeline(actions):
        if fired:
            if in_force != current:
                current, since = in_force, t
            last_fire = t
        if current is None or minute < 0:
            continue
        held = int((t - since).total_seconds() // 60) + 1
        if held > hold.get(current, 0):
            hold[current], hold_from[current] = held, since
        silence[current] = max(silence.get(current, 0), int((t - last_fire).total_seconds() // 60))
    return tuple(
        (name, ScheduleHold(hold.get(name, 0), hold_from.get(name), silence.get(name, 0)))
        for name, _ in actions
    )


def in_force_over_week(scheduled: Sequence[ScheduledAction]) -> tuple[str | None, ...]:
    """The action in force at each minute of a week, Monday 00:00 UTC first (WEEK_MIN entries); None before any
    action has fired. Cached per schedule."""
    return _in_force(tuple((a.name, a.schedule) for a in scheduled))


@lru_cache(maxsize=64)
def _in_force(actions: tuple[tuple[str, str], ...]) -> tuple[str | None, ...]:
    return tuple(in_force for minute, _, _, in_force in _timeline(actions) if minute >= 0)
