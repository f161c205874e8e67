"""access_denied_burst, duress, device_offline, camera_tamper and camera_offline."""

from __future__ import annotations

import pytest
from rules_site import make_site, play

CASES = {
    # ----- access_denied_burst -----
    "three denials in a minute at one door": (
        "{type: access_denied_burst, count: 3, window: 1m}",
        """
        main denied card=111
        wait 20s
        main denied card=222
        wait 20s
        main denied card=333
        """,
        ["40s raised access_denied_burst medium"],
    ),
    "denials spread wider than the window never burst": (
        "{type: access_denied_burst, count: 3, window: 1m}",
        """
        main denied
        wait 35s
        main denied
        wait 35s
        main denied
        wait 35s
        main denied
        """,
        [],
    ),
    "the window slides: the oldest denial drops out": (
        "{type: access_denied_burst, count: 3, window: 1m}",
        """
        main denied
        wait 50s
        main denied
        wait 20s
        main denied
        wait 5s
        main denied
        """,
        ["75s raised access_denied_burst medium"],
    ),
    "denials at different doors do not add up per door": (
        "{type: access_denied_burst, count: 3}",
        """
        main denied card=111
        gym-east denied card=111
        sro-office denied card=111
        """,
        [],
    ),
    "per credential: one card at three doors": (
        "{type: access_denied_burst, count: 3, per: credential}",
        """
        main denied card=111
        gym-east denied card=111
        sro-office denied card=111
        main denied card=222
        """,
        ["0s raised access_denied_burst medium"],
    ),
    "after a burst the count starts again (the next burst is an occurrence)": (
        "{type: access_denied_burst, count: 2, window: 1m}",
        """
        main denied
        main denied
        wait 10s
        main denied
        wait 10s
        main denied
        """,
        ["0s raised access_denied_burst medium", "20s updated access_denied_burst medium"],
    ),
    "replayed denials are not counted": (
        "{type: access_denied_burst, count: 2}",
        """
        main denied replayed
        main denied replayed
        main denied
        """,
        [],
    ),
    "duplicate denials count once": (
        "{type: access_denied_burst, count: 2}",
        """
        main denied key=d1
        main denied key=d1
        """,
        [],
    ),
    # ----- duress -----
    "duress raises a critical alert": (
        "{type: duress}",
        "main duress holder=Ann",
        ["0s raised duress critical"],
    ),
    "replayed duress never raises": ("{type: duress}", "main duress replayed", []),
    "duress outside the zone filter is not this instance's": (
        "{type: duress, zones: [admin]}",
        "main duress\nsro-office duress",
        ["0s raised duress critical"],
    ),
    # ----- device_offline -----
    "controller offline, then back": (
        "{type: device_offline}",
        """
        device uhppote offline
        wait 2m
        device uhppote online
        """,
        ["0s raised device_offline high", "120s resolved device_offline high"],
    ),
    "replayed offline never raises; replayed online still resolves": (
        "{type: device_offline}",
        """
        device uhppote offline replayed
        device contacts offline
        wait 1m
        device contacts online replayed
        """,
        ["0s raised device_offline high", "60s resolved device_offline high"],
    ),
    "a repeated offline is an occurrence": (
        "{type: device_offline}",
        "device uhppote offline\nwait 1m\ndevice uhppote offline",
        ["0s raised device_offline high", "60s updated device_offline high"],
    ),
    "devices filter": (
        "{type: device_offline, devices: [contacts]}",
        "device uhppote offline\ndevice contacts offline",
        ["0s raised device_offline high"],
    ),
    "zone filter picks devices by the doors they serve": (
        "{type: device_offline, zones: [plant]}",
        "device uhppote offline\ndevice contacts offline",
        ["0s raised device_offline high"],
    ),
    "a camera going offline is not a device_offline alert": (
        "{type: device_offline}",
        "camera cam-gym offline",
        [],
    ),
    # ----- camera_tamper -----
    "tamper, then cleared": (
        "{type: camera_tamper}",
        "camera cam-gym tamper\nwait 30s\ncamera cam-gym cleared",
        ["0s raised camera_tamper high", "30s resolved camera_tamper high"],
    ),
    "tamper cameras filter": (
        "{type: camera_tamper, cameras: [cam-lot]}",
        "camera cam-gym tamper\ncamera cam-lot tamper",
        ["0s raised camera_tamper high"],
    ),
    "tamper zone filter uses the doors the camera watches": (
        "{type: camera_tamper, zones: [athletics]}",
        "camera cam-lot tamper\ncamera cam-gym tamper",
        ["0s raised camera_tamper high"],
    ),
    "replayed tamper never raises": ("{type: camera_tamper}", "camera cam-gym tamper replayed", []),
    # ----- camera_offline -----
    "camera offline, then back": (
        "{type: camera_offline}",
        "camera cam-lot offline\nwait 5m\ncamera cam-lot online",
        ["0s raised camera_offline medium", "300s resolved camera_offline medium"],
    ),
    "a controller going offline is not a camera_offline alert": (
        "{type: camera_offline}",
        "device uhppote offline",
        [],
    ),
}


@pytest.mark.parametrize(("rules", "script", "expected"), CASES.values(), ids=CASES.keys())
def test_rule(rules, script, expected):
    """Each scenario produces exactly the expected transitions at the expected times."""
    site = make_site(f"- {rules}")
    assert play(site, script) == expected


def test_burst_alert_names_the_door_or_the_card():
    """Per door the subject is the door; per credential it is the masked card."""
    site = make_site(
        """
        - {type: access_denied_burst, count: 2}
        - {type: access_denied_burst, count: 2, per: credential}
        """
    )
    play(site, "main denied card=4011223344\nmain denied card=4011223344")
    by_id = {a.rule: a for a in site.alerts(rule="access_denied_burst")}
    per_door, per_card = by_id["access_denied_burst"], by_id["access_denied_burst-2"]
    assert per_door.subject == "door:main"
    assert per_door.title == "Repeated denied access: Main entrance"
    assert per_card.subject == "credential:******3344"
    assert per_card.details["denials"] == 2


def test_offline_and_tamper_titles():
    """Device and camera alerts are titled by the device and the camera."""
    site = make_site(
        """
        - {type: device_offline}
        - {type: camera_tamper}
        - {type: camera_offline}
        """
    )
    play(site, "device uhppote offline\ncamera cam-gym tamper\ncamera cam-lot offline")
    assert site.alert(rule="device_offline").title == "Device offline: uhppote"
    tamper = site.alert(rule="camera_tamper")
    assert (tamper.title, tamper.camera, tamper.subject) == (
        "Camera tampered with: cam-gym",
        "cam-gym",
        "camera:cam-gym",
    )
    assert site.alert(rule="camera_offline").title == "Camera offline: cam-lot"


def test_one_event_many_rules():
    """A duress code after hours raises both rules' alerts from one event."""
    site = make_site(
        """
        - {type: duress}
        - {type: after_hours_access, schedule: school-hours}
        """
    )
    site.at("2026-01-05T23:00")
    play(site, "main duress")
    assert sorted(a.rule for a in site.alerts()) == ["after_hours_access", "duress"]
