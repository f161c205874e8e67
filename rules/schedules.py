"""Schedules: weekly open windows in the site's time zone, with holidays and exceptions.

A moment is judged by the site's local wall time (zoneinfo), so a window written as 07:00
means 07:00 on the clock on the wall, on both sides of a daylight-saving change. Only
``received_at`` is ever judged; device clocks are not trusted for this.

Precedence for one day: an ``exceptions`` entry for that day replaces its windows (empty:
closed); else a holiday closes it; else the weekly windows apply. A window whose end is before
its start runs past midnight and belongs to the day it starts on: ``fri: ["22:00-06:00"]`` is
open until 06:00 on Saturday, and a holiday on Friday closes that whole night.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from doorwatch.config.models import ScheduleConfig, parse_days, parse_window


@dataclass(frozen=True, slots=True)
class Window:
    """One open window of a day, in local wall time."""

    start: time
    end: time

    @property
    def overnight(self) -> bool:
        """The window runs past midnight into the next day."""
        return self.end < self.start

    def holds_same_day(self, at: time) -> bool:
        """Whether ``at`` on the window's own day falls inside it."""
        if self.overnight:
            return at >= self.start
        # "24:00" is parsed as time.max, which every time of day is below or equal to.
        return self.start <= at and (at < self.end or self.end == time.max)

    def holds_next_day(self, at: time) -> bool:
        """Whether ``at`` on the following day falls inside it (the tail of an overnight)."""
        return self.overnight and at < self.end


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """Whether a schedule is open at a moment, and why."""

    open: bool
    local: datetime
    # weekly, holiday, exception (or exception: <note>), or closed.
    reason: str


def _date_span(text: str) -> tuple[date, date]:
    first, _, last = text.partition("..")
    start = date.fromisoformat(first.strip())
    return start, date.fromisoformat(last.strip()) if last else start


def _windows(texts: Iterable[str]) -> tuple[Window, ...]:
    return tuple(Window(*parse_window(t)) for t in texts)


class Schedule:
    """One named schedule of the config, ready to judge moments."""

    def __init__(self, name: str, config: ScheduleConfig, zone: ZoneInfo | str) -> None:
        self.name = name
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        weekly: dict[int, list[Window]] = defaultdict(list)
        for spec, texts in config.weekly.items():
            for day in parse_days(spec):
                weekly[day].extend(_windows(texts))
        self._weekly = {day: tuple(w) for day, w in weekly.items()}
        self._holidays = [_date_span(h) for h in config.holidays]
        self._exceptions = [
            (*_date_span(e.date), _windows(e.windows), e.note) for e in config.exceptions
        ]

    def windows_on(self, day: date) -> tuple[tuple[Window, ...], str]:
        """The windows that start on ``day``, and which rule chose them."""
        for start, end, windows, note in self._exceptions:
            if start <= day <= end:
                return windows, f"exception: {note}" if note else "exception"
        if any(start <= day <= end for start, end in self._holidays):
            return (), "holiday"
        return self._weekly.get(day.weekday(), ()), "weekly"

    def status(self, moment: datetime) -> ScheduleStatus:
        """Judge a UTC (or any aware) moment by the site's local wall time."""
        if moment.tzinfo is None:
            raise ValueError("schedules judge aware moments only (received_at is UTC)")
        local = moment.astimezone(self.zone)
        day, at = local.date(), local.time().replace(tzinfo=None)
        today, why = self.windows_on(day)
        if any(w.holds_same_day(at) for w in today):
            return ScheduleStatus(open=True, local=local, reason=why)
        yesterday, why_before = self.windows_on(day - timedelta(days=1))
        if any(w.holds_next_day(at) for w in yesterday):
            return ScheduleStatus(open=True, local=local, reason=why_before)
        return ScheduleStatus(open=False, local=local, reason=why if why != "weekly" else "closed")

    def is_open(self, moment: datetime) -> bool:
        """Whether the schedule is open at ``moment``."""
        return self.status(moment).open
