"""door_held_open: per-door thresholds, pre-alarm escalating one alert, native alarms, resolve."""

from __future__ import annotations

import pytest
from rules_site import make_site, play

CASES = {
    "closed in time: nothing": (
        "{type: door_held_open}",
        """
        gym-east opens
        wait 19s
        gym-east closes
        wait 5m
        """,
        [],
    ),
    "pre-alarm at 20 s, escalates at 30 s, resolves on close": (
        "{type: door_held_open}",
        """
        gym-east opens
        wait 45s
        gym-east closes
        """,
        [
            "20s raised door_held_open low",
            "30s escalated door_held_open high",
            "45s resolved door_held_open high",
        ],
    ),
    "door without its own timings uses the rule's (alarm only)": (
        "{type: door_held_open, held_open_after: 1m}",
        """
        main opens
        wait 59s
        main closes
        main opens
        wait 2m
        main closes
        """,
        ["119s raised door_held_open high", "179s resolved door_held_open high"],
    ),
    "rule-level pre-alarm and severities": (
        (
            "{type: door_held_open, held_open_after: 40s, prealarm_after: 10s,"
            " prealarm_severity: medium, severity: critical}"
        ),
        """
        main opens
        wait 40s
        """,
        ["10s raised door_held_open medium", "40s escalated door_held_open critical"],
    ),
    "a repeated 'opened' does not restart the count": (
        "{type: door_held_open}",
        """
        gym-east opens
        wait 25s
        gym-east opens
        wait 5s
        """,
        ["20s raised door_held_open low", "30s escalated door_held_open high"],
    ),
    "native held-open alarm (uhppoted 37) escalates and replaces the timers": (
        "{type: door_held_open}",
        """
        gym-east opens
        wait 21s
        gym-east held_open
        wait 1m
        gym-east closes
        """,
        [
            "20s raised door_held_open low",
            "21s escalated door_held_open high",
            "81s resolved door_held_open high",
        ],
    ),
    "native warning then native alarm": (
        "{type: door_held_open}",
        """
        main held_warning
        wait 5s
        main held_open
        main closes
        """,
        [
            "0s raised door_held_open low",
            "5s escalated door_held_open high",
            "5s resolved door_held_open high",
        ],
    ),
    "unmapped door's native alarm still raises, naming the ref": (
        "{type: door_held_open, doors: [gym-east]}",
        """
        ref:405419896:4 held_open
        wait 10s
        ref:405419896:4 closes
        """,
        ["0s raised door_held_open high", "10s resolved door_held_open high"],
    ),
    "replayed opening never raises": (
        "{type: door_held_open}",
        """
        gym-east opens replayed
        wait 5m
        """,
        [],
    ),
    "replayed close still resolves (it describes the present)": (
        "{type: door_held_open}",
        """
        main opens
        wait 31s
        main closes replayed
        """,
        ["30s raised door_held_open high", "31s resolved door_held_open high"],
    ),
    "replayed native alarm never raises": (
        "{type: door_held_open}",
        """
        main held_open replayed
        wait 5m
        """,
        [],
    ),
    "duplicate events never double-count": (
        "{type: door_held_open, held_open_after: 10s}",
        """
        main opens key=a
        wait 5s
        main opens key=a
        main closes key=b
        main closes key=b
        wait 1m
        """,
        [],
    ),
    "door filter: other doors are not watched": (
        "{type: door_held_open, doors: [main]}",
        """
        gym-east opens
        wait 5m
        """,
        [],
    ),
    "zone filter": (
        "{type: door_held_open, zones: [athletics]}",
        """
        main opens
        gym-east opens
        wait 30s
        """,
        ["20s raised door_held_open low", "30s escalated door_held_open high"],
    ),
    "each propped episode is its own alert": (
        "{type: door_held_open, held_open_after: 10s}",
        """
        main opens
        wait 15s
        main closes
        main opens
        wait 15s
        main closes
        """,
        [
            "10s raised door_held_open high",
            "15s resolved door_held_open high",
            "25s raised door_held_open high",
            "30s resolved door_held_open high",
        ],
    ),
}


@pytest.mark.parametrize(("rules", "script", "expected"), CASES.values(), ids=CASES.keys())
def test_held_open(rules, script, expected):
    """Each scenario produces exactly the expected transitions at the expected times."""
    site = make_site(f"- {rules}")
    assert play(site, script) == expected


def test_prealarm_and_alarm_are_one_alert_with_titles_and_details():
    """The pre-alarm and the alarm are the same alert (same id, one occurrence); the title
    says pre-alarm first; the alarm carries how long the door was open; the board shows it."""
    site = make_site("- {type: door_held_open}")
    site.door("gym-east").opens()
    site.advance("20s")
    warning = site.alert(rule="door_held_open")
    assert warning.title == "Door held open: Gym east (pre-alarm)"
    assert warning.zone == "athletics"
    assert warning.door_name == "Gym east"
    site.advance("10s")
    alarm = site.alert(rule="door_held_open")
    assert alarm.id == warning.id
    assert alarm.title == "Door held open: Gym east"
    assert alarm.occurrences == 1
    assert alarm.details["stage"] == "alarm"
    assert alarm.details["open_for_s"] == 30.0
    assert "held" in site.state.door("gym-east").to_json()["alarms"]


def test_alarm_raises_anew_if_the_warning_was_closed_by_hand():
    """If a guard resolved the pre-alarm while the door stays open, the alarm still alarms."""
    site = make_site("- {type: door_held_open}")
    site.door("gym-east").opens()
    site.advance("20s")
    warning = site.alert(rule="door_held_open")
    site._rules.book.resolve(warning.id, by="guard", at=site.now)
    site.advance("10s")
    alarm = site.alert(rule="door_held_open", state="active")
    assert alarm.id != warning.id
    assert alarm.severity == "high"


def test_unmapped_alarm_title_names_the_reference():
    """An alarm at an unmapped door names its reference and source in the title."""
    site = make_site("- {type: door_held_open}")
    site.unmapped_door("405419896:4", source="uhppote").held_open()
    alert = site.alert()
    assert alert.title == "Door held open: unmapped door 405419896:4 (uhppote)"
    assert alert.subject == "ref:uhppote:405419896:4"
    assert alert.door is None


def test_custom_title_template_and_audiences():
    """title and audiences of the rule instance reach the alert."""
    site = make_site(
        "- {type: door_held_open, title: 'Propped: {door_name} ({zone})', audiences: [guards]}"
    )
    site.door("main").opens()
    site.advance("30s")
    alert = site.alert()
    assert alert.title == "Propped: Main entrance (perimeter)"
    assert alert.audiences == ("guards",)
