"""Opening hours: a weekly schedule and holidays, in a time zone.

Written in ``calendars.yaml`` beside the flows::

    office:
      timezone: America/New_York
      open:
        mon-fri: "08:00-12:00, 13:00-18:00"
        sat: "09:00-12:00"
      holidays:
        "2026-12-25": closed
        "2026-12-24": "08:00-12:00"      # a short day

Times are local to the calendar's zone (daylight saving included); ``24:00`` ends a day.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import ClassVar, Literal

import yaml

from ivrd.yaml_loader import Problem, bind, where

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)\s*$")
State = Literal["open", "closed", "holiday"]
Spans = tuple[tuple[int, int], ...]  # minutes from midnight, [start, end)


def _spans(text: str) -> Spans | str:
    """``"08:00-12:00, 13:00-18:00"`` as minute spans, or what is wrong with it."""
    if text.strip() == "closed":
        return ()
    spans = []
    for part in text.split(","):
        match = _SPAN.match(part)
        if not match:
            return f"expected times like 08:00-18:00 (several separated by commas) or closed, got {part.strip()!r}"
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or start >= end or end > 24 * 60:
            return f"{part.strip()!r} is not a span within one day (start before end, at most 24:00)"
        spans.append((start, end))
    return tuple(sorted(spans))


def _days(text: str) -> list[int] | None:
    """``mon-fri``, ``sat``, ``mon,wed`` as weekday numbers (Monday is 0)."""
    days: list[int] = []
    for part in text.replace(" ", "").split(","):
        ends = part.split("-")
        if not all(e in DAYS for e in ends) or len(ends) > 2:
            return None
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days.extend(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
    return days


@dataclass(frozen=True, slots=True)
class Calendar:
    DESCRIPTION: ClassVar[str] = "a calendar (timezone, open, holidays)"
    zone: zoneinfo.ZoneInfo
    week: tuple[Spans, ...]  # Monday first
    holidays: dict[dt.date, Spans]

    def state(self, epoch: float) -> State:
        """Whether the calendar is open at ``epoch`` (seconds since 1970, UTC)."""
        local = dt.datetime.fromtimestamp(epoch, self.zone)
        minute = local.hour * 60 + local.minute
        spans = self.holidays.get(local.date())
        if spans is not None:
            return "open" if any(a <= minute < b for a, b in spans) else "holiday"
        return "open" if any(a <= minute < b for a, b in self.week[local.weekday()]) else "closed"

    @classmethod
    def from_yaml(cls, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Calendar | None:
        raw = bind(_CalendarFile, node, file, problems, path)
        if raw is None:
            return None
        try:
            zone = zoneinfo.ZoneInfo(raw.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(where(node, file, f"{path}.timezone: unknown time zone {raw.timezone!r} "
                                              "(expected a name such as Europe/Paris)"))  # fmt: skip
            return None
        week: list[Spans] = [() for _ in DAYS]
        ok = True
        for key, value in _pairs(node, "open"):
            days, spans = _days(str(key.value)), _spans(str(value.value))
            if days is None:
                problems.append(where(key, file, f"{path}.open: expected days such as mon-fri, sat or mon,wed; "
                                                 f"got {key.value!r}"))  # fmt: skip
                ok = False
            elif isinstance(spans, str):
                problems.append(where(value, file, f"{path}.open.{key.value}: {spans}"))
                ok = False
            else:
                for day in days:
                    week[day] = spans
        holidays: dict[dt.date, Spans] = {}
        for key, value in _pairs(node, "holidays"):
            try:
                date = dt.date.fromisoformat(str(key.value))
            except ValueError:
                message = f"{path}.holidays: expected a date like 2026-12-25, got {key.value!r}"
                problems.append(where(key, file, message))
                ok = False
                continue
            spans = _spans(str(value.value))
            if isinstance(spans, str):
                problems.append(where(value, file, f"{path}.holidays.{key.value}: {spans}"))
                ok = False
            else:
                holidays[date] = spans
        return cls(zone, tuple(week), holidays) if ok else None


@dataclass(frozen=True, slots=True)
class _CalendarFile:
    timezone: str
    open: dict[str, str]
    holidays: dict[str, str] | None = None


def _pairs(node: yaml.Node, key: str) -> list[tuple[yaml.ScalarNode, yaml.ScalarNode]]:
    for k, v in node.value:
        if k.value == key and isinstance(v, yaml.MappingNode):
            return list(v.value)
    return []
