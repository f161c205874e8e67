"""Schedules: local wall time in the site's zone, DST-correct, holidays, exceptions, overnight."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from doorwatch.config.models import ScheduleConfig
from doorwatch.rules.schedules import Schedule

SCHOOL = ScheduleConfig.model_validate(
    {
        "weekly": {"mon-fri": ["07:00-16:30"], "sat": ["08:00-12:00"], "fri": ["22:00-06:00"]},
        "holidays": ["2026-12-25", "2026-12-28..2026-12-31", "2026-11-20"],
        "exceptions": [
            {"date": "2026-12-19", "windows": ["09:00-13:00"], "note": "open Saturday"},
            {"date": "2026-12-16", "windows": [], "note": "snow day"},
        ],
    }
)
CHICAGO = Schedule("school-hours", SCHOOL, "America/Chicago")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment_utc", "is_open", "reason"),
    [
        # Monday 2026-01-05, CST (UTC-6): 07:00 local is 13:00 UTC.
        ("2026-01-05T12:59", False, "closed"),
        ("2026-01-05T13:00", True, "weekly"),
        ("2026-01-05T22:29", True, "weekly"),
        ("2026-01-05T22:30", False, "closed"),  # 16:30 local: the end is exclusive.
        # Saturday 08:00-12:00 local.
        ("2026-01-10T14:30", True, "weekly"),
        ("2026-01-10T18:30", False, "closed"),
        # Sunday: no windows at all.
        ("2026-01-11T17:00", False, "closed"),
        # Friday-night window wraps midnight: Sat 05:59 local open, 06:00 closed.
        ("2026-01-10T11:59", True, "weekly"),
        ("2026-01-10T12:00", False, "closed"),
        # Christmas (a Friday) and a holiday range: closed all day, and the Friday-night
        # window that starts on the holiday is closed too (it belongs to its start day).
        ("2026-12-25T16:00", False, "holiday"),
        ("2026-12-26T08:00", False, "closed"),  # Sat 02:00 local, tail of a holiday night.
        ("2026-12-29T16:00", False, "holiday"),
        # A one-off open Saturday and a snow day on a Wednesday.
        ("2026-12-19T16:00", True, "exception: open Saturday"),
        ("2026-12-19T14:30", False, "exception: open Saturday"),
        ("2026-12-16T16:00", False, "exception: snow day"),
        # DST starts 2026-03-08 (Sunday) at 02:00 CST -> 03:00 CDT. Monday 03-09 07:00 CDT is
        # 12:00 UTC; the same UTC time the Monday before is 06:00 CST, closed.
        ("2026-03-09T12:00", True, "weekly"),
        ("2026-03-02T12:00", False, "closed"),
        # DST ends 2026-11-01 (Sunday). Monday 11-02 07:00 CST is 13:00 UTC; 12:30 UTC is
        # 06:30 local now, though it was 07:30 local the Monday before.
        ("2026-11-02T12:30", False, "closed"),
        ("2026-10-26T12:30", True, "weekly"),
        ("2026-11-02T13:00", True, "weekly"),
    ],
)
def test_school_schedule_in_chicago(moment_utc, is_open, reason):
    """Each moment is judged by Chicago wall time: weekly windows, the overnight tail,
    holidays and their ranges, exceptions, and both DST changes of 2026."""
    status = CHICAGO.status(utc(moment_utc))
    assert (status.open, status.reason) == (is_open, reason), status.local


def test_dst_change_days_themselves_keep_wall_clock_windows():
    """On the change days (Sundays) a daily window keeps its wall-clock meaning: 01:30-03:30
    local on 2026-03-08 skips the missing hour; on 2026-11-01 01:30 occurs twice, both open."""
    daily = Schedule(
        "night",
        ScheduleConfig.model_validate({"weekly": {"daily": ["01:30-03:30"]}}),
        "America/Chicago",
    )
    # 2026-03-08: 01:45 CST = 07:45 UTC (open); 03:15 CDT = 08:15 UTC (open);
    # 03:45 CDT = 08:45 UTC (closed). Only 90 real minutes are open that night.
    assert daily.is_open(utc("2026-03-08T07:45"))
    assert daily.is_open(utc("2026-03-08T08:15"))
    assert not daily.is_open(utc("2026-03-08T08:45"))
    # 2026-11-01: 01:45 CDT = 06:45 UTC and 01:45 CST = 07:45 UTC are both 01:45 local.
    assert daily.is_open(utc("2026-11-01T06:45"))
    assert daily.is_open(utc("2026-11-01T07:45"))
    # 03:15 CST = 09:15 UTC open, 03:45 CST = 09:45 UTC closed: 150 real minutes open.
    assert daily.is_open(utc("2026-11-01T09:15"))
    assert not daily.is_open(utc("2026-11-01T09:45"))


@pytest.mark.parametrize(
    ("zone", "moment_utc", "is_open"),
    [
        # Tokyo (UTC+9, no DST): 07:00 local Monday is 22:00 UTC on Sunday.
        ("Asia/Tokyo", "2026-01-04T22:00", True),
        ("Asia/Tokyo", "2026-01-05T13:00", False),
        # Berlin in summer (UTC+2): 16:29 local is 14:29 UTC.
        ("Europe/Berlin", "2026-07-06T14:29", True),
        ("Europe/Berlin", "2026-07-06T14:30", False),
    ],
)
def test_non_utc_site_zones(zone, moment_utc, is_open):
    """The same weekly schedule judged in other zones uses their local wall time."""
    assert Schedule("s", SCHOOL, zone).is_open(utc(moment_utc)) is is_open


def test_a_window_to_midnight_written_24_00_includes_the_last_minute():
    """``20:00-24:00`` is open at 23:59:59 and closed at 00:00 the next day."""
    late = Schedule(
        "late", ScheduleConfig.model_validate({"weekly": {"mon": ["20:00-24:00"]}}), "UTC"
    )
    assert late.is_open(utc("2026-01-05T23:59:59"))
    assert not late.is_open(utc("2026-01-06T00:00"))


def test_naive_moments_are_refused():
    """received_at is aware UTC; a naive moment is a bug upstream, not guessed at."""
    with pytest.raises(ValueError):
        CHICAGO.is_open(datetime(2026, 1, 5, 12))  # noqa: DTZ001 - the point of the test.
