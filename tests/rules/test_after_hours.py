"""after_hours_access: schedule judged by the local wall time of received_at, in the site zone."""

from __future__ import annotations

import pytest
from rules_site import make_site, play

from doorwatch.testing import RuleHarness

OFFICE = "{type: after_hours_access, doors: [sro-office], schedule: school-hours, severity: high}"
EVERY_DAY = """
schedules:
  every-day:
    weekly: {daily: ["07:00-16:30"]}
"""
HOLIDAY_EXCEPTIONS = """
  exam-days:
    weekly: {mon-fri: ["07:00-16:30"]}
    holidays: ["2026-12-21..2027-01-01"]
    exceptions:
      - {date: "2026-12-22", windows: ["08:00-10:00"], note: staff day}
"""

CASES = {
    # (rules, when, script, expected): naive times are Chicago time; an offset is taken as written.
    "weekday in hours: fine": (OFFICE, "2026-01-05T10:00", "sro-office badge", []),
    "weekday evening: alert": (
        OFFICE,
        "2026-01-05T18:00",
        "sro-office badge",
        ["0s raised after_hours_access high"],
    ),
    "Saturday morning is open": (OFFICE, "2026-01-10T09:00", "sro-office badge", []),
    "Saturday afternoon is not": (
        OFFICE,
        "2026-01-10T13:00",
        "sro-office badge",
        ["0s raised after_hours_access high"],
    ),
    "Sunday is closed all day": (
        OFFICE,
        "2026-01-11T10:00",
        "sro-office badge",
        ["0s raised after_hours_access high"],
    ),
    "Christmas (a Friday) is a holiday": (
        OFFICE,
        "2026-12-25T10:00",
        "sro-office badge",
        ["0s raised after_hours_access high"],
    ),
    # DST starts Sunday 2026-03-08. 12:05 UTC is 07:05 CDT on the Monday after (open) but
    # 06:05 CST on the Friday before (closed).
    "Monday after spring-forward, 07:05 CDT": (
        OFFICE,
        "2026-03-09T12:05:00+00:00",
        "sro-office badge",
        [],
    ),
    "Friday before spring-forward, same UTC time is 06:05 CST": (
        OFFICE,
        "2026-03-06T12:05:00+00:00",
        "sro-office badge",
        ["0s raised after_hours_access high"],
    ),
    # DST ends Sunday 2026-11-01. 12:30 UTC is 07:30 CDT on Friday 10-30 (open) and 06:30 CST
    # on Monday 11-02 (closed).
    "Friday before fall-back, 07:30 CDT": (
        OFFICE,
        "2026-10-30T12:30:00+00:00",
        "sro-office badge",
        [],
    ),
    "Monday after fall-back, same UTC time is 06:30 CST": (
        OFFICE,
        "2026-11-02T12:30:00+00:00",
        "sro-office badge",
        ["0s raised after_hours_access high"],
    ),
    "grants are judged per door: other doors are not watched": (
        OFFICE,
        "2026-01-05T22:00",
        "main badge\ngym-east badge",
        [],
    ),
    "zone filter": (
        "{type: after_hours_access, zones: [perimeter], schedule: school-hours}",
        "2026-01-05T22:00",
        "main badge\nsro-office badge",
        ["0s raised after_hours_access medium"],
    ),
    "denied attempts only with include_denied": (
        OFFICE,
        "2026-01-05T22:00",
        "sro-office denied",
        [],
    ),
    "include_denied: a denied attempt after hours alerts": (
        (
            "{type: after_hours_access, doors: [sro-office], schedule: school-hours,"
            " include_denied: true}"
        ),
        "2026-01-05T22:00",
        "sro-office denied",
        ["0s raised after_hours_access medium"],
    ),
    "replayed grant never raises": (
        OFFICE,
        "2026-01-05T22:00",
        "sro-office badge replayed",
        [],
    ),
    "repeats count on the open alert": (
        OFFICE,
        "2026-01-05T22:00",
        "sro-office badge\nwait 5m\nsro-office badge",
        ["0s raised after_hours_access high", "300s updated after_hours_access high"],
    ),
}


@pytest.mark.parametrize(
    ("rules", "moment", "script", "expected"), CASES.values(), ids=CASES.keys()
)
def test_after_hours(rules, moment, script, expected):
    """Each access is judged against the schedule in Chicago wall time."""
    site = make_site(f"- {rules}")
    site.at(moment)
    assert play(site, script) == expected


@pytest.mark.parametrize(
    ("moment_utc", "raised"),
    [
        # On the change days themselves (Sundays) an every-day 07:00-16:30 window keeps its
        # wall-clock meaning: 2026-03-08 06:55 CDT = 11:55 UTC, 07:05 CDT = 12:05 UTC;
        # 2026-11-01 06:55 CST = 12:55 UTC, 07:05 CST = 13:05 UTC.
        ("2026-03-08T11:55:00+00:00", True),
        ("2026-03-08T12:05:00+00:00", False),
        ("2026-11-01T12:55:00+00:00", True),
        ("2026-11-01T13:05:00+00:00", False),
    ],
)
def test_dst_change_days(moment_utc, raised):
    """Access on 2026-03-08 and 2026-11-01 is judged by Chicago wall time after the change."""
    site = make_site("- {type: after_hours_access, schedule: every-day}", extra=EVERY_DAY)
    site.at(moment_utc)
    site.door("main").badge("Ann")
    assert bool(site.alerts()) is raised


@pytest.mark.parametrize(
    ("local", "raised"),
    [
        ("2026-12-18T09:00", False),  # A normal Friday.
        ("2026-12-21T09:00", True),  # Inside the holiday range.
        ("2026-12-22T09:00", False),  # Exception inside the range: a staff day, 08-10.
        ("2026-12-22T11:00", True),  # The staff day's windows replace the weekly ones.
        ("2027-01-01T09:00", True),  # Last day of the range.
        ("2027-01-04T09:00", False),  # Back to school.
    ],
)
def test_holiday_ranges_and_exceptions(local, raised):
    """Holiday ranges close whole days; an exception gives a day its own windows."""
    site = make_site(
        "- {type: after_hours_access, schedule: exam-days}", extra=EVERY_DAY + HOLIDAY_EXCEPTIONS
    )
    site.at(local)
    site.door("main").badge()
    assert bool(site.alerts()) is raised


def test_non_utc_site_zone_tokyo():
    """In a Tokyo site, 22:30 UTC on a Sunday is 07:30 Monday local: open; 08:00 UTC on a
    Monday is 17:00 local: after hours."""
    site = RuleHarness(
        """
        site: {name: Sakura Gakuen, timezone: Asia/Tokyo}
        doors: [{id: gate}]
        schedules: {school: {weekly: {mon-fri: ["07:00-16:30"]}}}
        rules: [{type: after_hours_access, schedule: school}]
        """
    )
    site.at("2026-01-04T22:30:00+00:00")
    site.door("gate").badge("Hana")
    assert site.alerts() == []
    site.at("2026-01-05T08:00:00+00:00")
    site.door("gate").badge("Hana")
    alert = site.alert()
    assert alert.details["local_time"] == "2026-01-05T17:00:00+09:00"


def test_details_say_who_and_why():
    """The alert records holder, masked card, local time, schedule and why it was closed."""
    site = make_site(f"- {OFFICE}")
    site.at("2026-12-25T22:00")
    site.door("sro-office").badge("Pat Doe", credential="4011223344")
    alert = site.alert()
    assert alert.title == "After-hours access: SRO office"
    assert alert.details["holder"] == "Pat Doe"
    assert alert.details["credential"] == "******3344"
    assert alert.details["local_time"] == "2026-12-25T22:00:00-06:00"
    assert alert.details["closed_because"] == "holiday"
    assert alert.condition_cleared  # Momentary: an access is a moment.
