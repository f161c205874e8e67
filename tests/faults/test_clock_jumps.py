"""Clock jumps: the wall clock is stepped by an hour (NTP, an admin, a bad RTC) mid-scenario.

Timers run on the clock's monotonic time, so a held-open door still alarms after exactly its
threshold whichever way the wall clock moved; schedules read the wall clock, so after-hours
decisions follow the new wall time at once. The rules run on the harness's virtual clock;
``step_wall`` moves only its wall time, the way a real NTP step moves ``CLOCK_REALTIME`` and
leaves ``CLOCK_MONOTONIC`` alone (the harness's own ``at`` lets time pass when it goes
forwards, which is a different thing).

Figures for RELIABILITY.md go to test-artifacts/reliability-clock-jumps.json.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import REPO

from doorwatch.testing import RuleHarness

pytestmark = pytest.mark.faults

HOUR = timedelta(hours=1)
SITE = """
site: {name: Clock High, timezone: America/Chicago}
doors:
  - {id: gym, name: Gym, held_open_after: 30s, prealarm_after: 20s}
  - {id: office, name: Office}
controllers:
  - {id: gen, codec: generic, topics: ["site/#"], doors: {"gym": gym, "office": office}}
schedules:
  school-hours:
    weekly: {mon-fri: ["07:00-16:30"]}
rules:
  - {type: door_held_open}
  - {type: after_hours_access, doors: [office], schedule: school-hours, severity: high}
  - {type: door_forced_open, shunt: 10s}
  - {type: access_denied_burst, count: 3, window: 60s}
"""
RESULTS: dict[str, Any] = {}


def step_wall(site: RuleHarness, delta: timedelta) -> None:
    """Step the wall clock by ``delta`` without letting any monotonic time pass."""
    clock = site._rules.clock
    before = clock.monotonic()
    clock._wall_base += delta
    assert clock.monotonic() == before


def record(name: str, **figures: Any) -> None:
    RESULTS[name] = figures
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "reliability-clock-jumps.json").write_text(json.dumps(RESULTS, indent=2))


@pytest.mark.parametrize("jump", [HOUR, -HOUR], ids=["forward", "back"])
def test_held_open_timer_keeps_its_length_across_a_wall_clock_step(jump):
    """Door opens; 10 s later the wall clock jumps an hour: the pre-alarm still comes 20 s
    and the alarm 30 s after the opening (monotonic), neither early nor an hour late."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").opens()
    site.advance("10s")
    step_wall(site, jump)
    assert site.alerts() == []
    site.advance("9.9s")
    assert site.alerts() == [], "pre-alarm came early"
    site.advance("0.1s")
    assert site.alert(rule="door_held_open").details["stage"] == "pre-alarm"
    site.advance("9.9s")
    assert site.alert(rule="door_held_open").details["stage"] == "pre-alarm", "alarm came early"
    site.advance("0.1s")
    alert = site.alert(rule="door_held_open")
    assert alert.details["stage"] == "alarm"
    site.door("gym").closes()
    assert site.alerts(state="active") == []
    record(
        f"held_open_{'forward' if jump > timedelta(0) else 'back'}",
        jump_s=jump.total_seconds(),
        prealarm_after_s=20,
        alarm_after_s=30,
        alerts=len(site.alerts()),
    )


@pytest.mark.parametrize("jump", [HOUR, -HOUR], ids=["forward", "back"])
def test_a_door_closed_in_time_never_alarms_across_a_step(jump):
    """Open, step the wall clock, close 15 s after opening: no alert, ever."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").opens()
    site.advance("5s")
    step_wall(site, jump)
    site.advance("10s")
    site.door("gym").closes()
    site.advance("2h")
    assert site.alerts() == []


@pytest.mark.parametrize(
    ("start", "jump", "before", "after"),
    [
        # 16:10 is in hours; an hour forward it is 17:10, after hours.
        ("2026-01-05T16:10", HOUR, [], ["after_hours_access"]),
        # 07:30 is in hours; an hour back it is 06:30, before hours.
        ("2026-01-05T07:30", -HOUR, [], ["after_hours_access"]),
        # 17:10 is after hours; an hour back it is 16:10, in hours again.
        ("2026-01-05T17:10", -HOUR, ["after_hours_access"], []),
    ],
    ids=["forward-out-of-hours", "back-out-of-hours", "back-into-hours"],
)
def test_schedules_follow_the_new_wall_time_at_once(start, jump, before, after):
    """A badge just before the step is judged by the old wall time, one just after by the
    new one; nothing waits for a timer to notice."""
    site = RuleHarness(SITE, start=start)
    site.door("office").badge(holder="Ann")
    assert [a.rule for a in site.alerts()] == before
    step_wall(site, jump)
    site.advance("1s")
    site.door("office").badge(holder="Ann")
    raised = [a.rule for a in site.alerts()]
    assert raised.count("after_hours_access") == before.count("after_hours_access") + (
        after.count("after_hours_access")
    )
    record(
        f"schedule_{start[-5:]}_{int(jump.total_seconds())}",
        local_before=start,
        jump_s=jump.total_seconds(),
        raised_before=len(before),
        raised_after=len(after),
    )


def test_a_badge_then_a_backward_step_does_not_make_the_opening_forced():
    """Badge, the wall clock steps back an hour, the door opens 2 s later: the grant 2 s
    earlier (real time) explains the opening; no forced-door alarm."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").badge(holder="Ann")
    site.advance("1s")
    step_wall(site, -HOUR)
    site.advance("1s")
    site.door("gym").opens()
    assert site.alerts(rule="door_forced_open") == []


def test_a_badge_then_a_forward_step_does_not_make_the_opening_forced():
    """Badge, the wall clock steps forward an hour, the door opens 2 s later: the shunt runs
    on the monotonic clock, so the grant 2 s earlier (real time) explains the opening."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").badge(holder="Ann")
    site.advance("1s")
    step_wall(site, HOUR)
    site.advance("1s")
    site.door("gym").opens()
    assert site.alerts(rule="door_forced_open") == []


@pytest.mark.parametrize("jump", [HOUR, -HOUR], ids=["forward", "back"])
def test_forced_door_without_a_grant_is_raised_whatever_the_step(jump):
    """An opening with no grant is forced before and after a step, counted once each time."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").badge(holder="Ann")
    site.advance("1m")
    site.door("gym").opens()
    site.door("gym").closes()
    step_wall(site, jump)
    site.advance("1m")
    site.door("gym").opens()
    forced = [t.action.value for t in site.transitions if t.alert.rule == "door_forced_open"]
    # The first alert is still open (nobody acknowledged it): the second opening is counted
    # on it as a repeat.
    assert forced == ["raised", "updated"]
    assert site.alert(rule="door_forced_open").occurrences == 2


def test_denied_burst_across_a_backward_step_is_still_a_burst():
    """Three denials within 20 s (real time) with the wall clock stepped back between them
    are one burst."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").denied()
    site.advance("10s")
    site.door("gym").denied()
    step_wall(site, -HOUR)
    site.advance("10s")
    site.door("gym").denied()
    assert [a.rule for a in site.alerts()] == ["access_denied_burst"]


def test_denied_burst_across_a_forward_step_is_still_a_burst():
    """Three denials within 20 s (real time) with the wall clock stepped forward between
    them are one burst."""
    site = RuleHarness(SITE, start="2026-01-05T10:00")
    site.door("gym").denied()
    site.advance("10s")
    site.door("gym").denied()
    step_wall(site, HOUR)
    site.advance("10s")
    site.door("gym").denied()
    assert [a.rule for a in site.alerts()] == ["access_denied_burst"]
