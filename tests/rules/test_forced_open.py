"""door_forced_open: grant/REX inside and outside the shunt, unlock, native alarms, inference."""

from __future__ import annotations

import pytest
from rules_site import make_site, play

from doorwatch.rules.builtin.forced_open import reader_doors
from doorwatch.testing import RuleHarness

CASES = {
    "grant 5 s before the opening: explained": (
        "{type: door_forced_open, shunt: 10s}",
        """
        main badge holder=Ann
        wait 5s
        main opens
        """,
        [],
    ),
    "grant 10 s before (the shunt has run out): forced": (
        "{type: door_forced_open, shunt: 10s}",
        """
        main badge
        wait 10s
        main opens
        """,
        ["10s raised door_forced_open critical"],
    ),
    "REX 2 s before the opening: explained": (
        "{type: door_forced_open}",
        """
        main rex
        wait 2s
        main opens
        """,
        [],
    ),
    "REX 30 s before: forced": (
        "{type: door_forced_open}",
        """
        main rex
        wait 30s
        main opens
        """,
        ["30s raised door_forced_open critical"],
    ),
    "grant at another door explains nothing": (
        "{type: door_forced_open}",
        """
        gym-east badge
        main rex
        main closes
        wait 1s
        gym-east opens
        """,
        [],
    ),
    "a wider shunt covers a slow walker": (
        "{type: door_forced_open, shunt: 30s}",
        """
        main badge
        wait 25s
        main opens
        """,
        [],
    ),
    "unlocked door (scheduled unlock) is not forced; locked again it is": (
        "{type: door_forced_open}",
        """
        main rex
        wait 1m
        main unlocked
        main opens
        main closes
        main locked
        main opens
        """,
        ["60s raised door_forced_open critical"],
    ),
    "a repeated 'opened' is the same opening": (
        "{type: door_forced_open}",
        """
        main rex
        wait 1m
        main opens
        main opens
        """,
        ["60s raised door_forced_open critical"],
    ),
    "contact-only door with no access source is not guessed at": (
        "{type: door_forced_open}",
        """
        boiler opens
        boiler closes
        wait 1h
        boiler opens
        """,
        [],
    ),
    "native forced alarm at a contact-only door still raises": (
        "{type: door_forced_open}",
        """
        boiler forced
        """,
        ["0s raised door_forced_open critical"],
    ),
    "native forced right after ours is the same opening (updated, not a 2nd occurrence)": (
        "{type: door_forced_open}",
        """
        main rex
        wait 1m
        main opens
        wait 1s
        main forced
        """,
        ["60s raised door_forced_open critical", "61s updated door_forced_open critical"],
    ),
    "unmapped door's native forced alarm raises even with a door filter": (
        "{type: door_forced_open, doors: [main]}",
        """
        ref:405419896:9 forced
        """,
        ["0s raised door_forced_open critical"],
    ),
    "a second forced opening while the first is unacknowledged counts": (
        "{type: door_forced_open}",
        """
        main rex
        wait 1m
        main opens
        main closes
        wait 1m
        main opens
        """,
        ["60s raised door_forced_open critical", "120s updated door_forced_open critical"],
    ),
    "replayed opening never raises": (
        "{type: door_forced_open}",
        """
        main rex
        wait 1m
        main opens replayed
        main forced replayed
        """,
        [],
    ),
    "replayed grant still explains a live opening": (
        "{type: door_forced_open}",
        """
        main badge replayed
        wait 2s
        main opens
        """,
        [],
    ),
    "duplicate opening events raise once": (
        "{type: door_forced_open}",
        """
        main rex
        wait 1m
        main opens key=x
        main closes key=y
        main opens key=x
        """,
        ["60s raised door_forced_open critical"],
    ),
    "zone filter": (
        "{type: door_forced_open, zones: [athletics]}",
        """
        main rex
        gym-east rex
        wait 1m
        main opens
        gym-east opens
        """,
        ["60s raised door_forced_open critical"],
    ),
}


@pytest.mark.parametrize(("rules", "script", "expected"), CASES.values(), ids=CASES.keys())
def test_forced_open(rules, script, expected):
    """Each scenario produces exactly the expected transitions at the expected times."""
    site = make_site(f"- {rules}")
    assert play(site, script) == expected


FLAGGED = """
site: {name: Lincoln High, timezone: America/Chicago}
doors:
  - {id: loading-dock, access_controlled: false}
  - {id: server-room, access_controlled: true}
rules: [{type: door_forced_open}]
"""


def test_access_controlled_false_turns_the_computed_alarm_off():
    """A door configured access_controlled: false never gets a computed forced alarm, even
    though exit requests are seen there; its native alarm still counts."""
    site = RuleHarness(FLAGGED)
    assert play(site, "loading-dock rex\nwait 1m\nloading-dock opens\nloading-dock forced") == [
        "60s raised door_forced_open critical"
    ]


def test_access_controlled_true_alarms_before_any_grant_was_seen():
    """access_controlled: true makes a door's first unexplained opening forced."""
    site = RuleHarness(FLAGGED)
    assert play(site, "server-room opens") == ["0s raised door_forced_open critical"]


READERS = """
site: {name: Lincoln High, timezone: America/Chicago}
doors: [{id: front}, {id: gym}, {id: shed}]
controllers:
  - {id: uhppote, codec: uhppoted, topics: ["uhppoted/gateway/events/live"],
     doors: {"405419896:1": front}}
  - {id: rfid, codec: esp-rfid, topics: ["esprfid/#"], doors: {"gym-reader": gym}}
  - {id: z2m, codec: zigbee2mqtt, topics: ["zigbee2mqtt/#"], doors: {"shed-contact": shed}}
rules: [{type: door_forced_open}]
"""


def test_a_door_behind_a_reader_codec_is_access_controlled_from_the_start():
    """Doors mapped by uhppoted or esp-rfid controllers alarm on their first unexplained
    opening; a zigbee2mqtt contact door is not guessed at."""
    site = RuleHarness(READERS)
    assert reader_doors(site.config) == {"front", "gym"}
    assert play(site, "front opens\ngym opens\nshed opens") == [
        "0s raised door_forced_open critical",
        "0s raised door_forced_open critical",
    ]
    assert {a.door for a in site.alerts()} == {"front", "gym"}


def test_forced_alert_is_momentary_and_details_say_why():
    """A forced alert is born cleared (nothing to wait for); acknowledging it resolves it."""
    site = make_site("- {type: door_forced_open, shunt: 5s}")
    play(site, "main rex\nwait 1m\nmain opens")
    alert = site.alert(rule="door_forced_open")
    assert alert.title == "Door forced open: Main entrance"
    assert alert.condition_cleared
    assert alert.details["computed"] is True
    assert alert.details["shunt_s"] == 5.0
    made = site.acknowledge(alert.id)
    assert [t.action.value for t in made] == ["acknowledged", "resolved"]
