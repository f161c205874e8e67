"""Shared by the rule tests: a small school site and a tiny script language to drive it.

A plain module (not conftest.py) so tests import it by a name no other test folder uses.
"""

from __future__ import annotations

import textwrap

from doorwatch.testing import RuleHarness

# A Chicago school: a gym door with its own timings and a camera, a main entrance, the SRO
# office, a contact-only boiler room door, and a school-hours schedule.
SITE = """
site: {name: Lincoln High, timezone: America/Chicago}
doors:
  - {id: gym-east, name: Gym east, zone: athletics, cameras: [cam-gym],
     held_open_after: 30s, prealarm_after: 20s}
  - {id: main, name: Main entrance, zone: perimeter}
  - {id: sro-office, name: SRO office, zone: admin}
  - {id: boiler, name: Boiler room, zone: plant}
controllers:
  - {id: uhppote, codec: generic, topics: ["uhppoted/#"],
     doors: {"405419896:1": gym-east, "405419896:2": main, "405419896:3": sro-office}}
  - {id: contacts, codec: generic, topics: ["zigbee2mqtt/#"], doors: {"boiler-contact": boiler}}
cameras:
  - {id: cam-gym, host: 192.0.2.10}
  - {id: cam-lot, host: 192.0.2.11}
schedules:
  school-hours:
    weekly: {mon-fri: ["07:00-16:30"], sat: ["08:00-12:00"]}
    holidays: ["2026-12-25"]
"""

_DOOR_VERBS = {
    "opens": "opens",
    "closes": "closes",
    "badge": "badge",
    "denied": "denied",
    "duress": "duress",
    "rex": "exit_request",
    "forced": "forced",
    "held_open": "held_open",
    "held_warning": "held_warning",
    "unlocked": "unlocked",
    "locked": "locked",
}


def make_site(rules: str, *, extra: str = "", start: str | None = None) -> RuleHarness:
    """The school site with these rules (YAML list items) and any extra sections."""
    text = SITE + "rules:\n" + textwrap.indent(textwrap.dedent(rules).strip(), "  ") + "\n"
    return RuleHarness(text + textwrap.dedent(extra), start=start)


def play(site: RuleHarness, script: str) -> list[str]:
    """Run a script; return the transitions as ``"<t>s <action> <rule> <severity>"``.

    Lines: ``wait 20s``; ``at 2026-01-10T22:00`` (site time); ``<door> <verb> [flags]`` where
    a door ``ref:<ref>`` is an unmapped door of the ``uhppote`` controller and flags are
    ``replayed``, ``key=<dedupe key>``, ``holder=<name>``, ``card=<number>``;
    ``device <id> offline|online [replayed]``; ``camera <id> tamper|cleared|offline|online``.
    ``<t>`` counts seconds from the start of the script.
    """
    start = site.now
    before = len(site.transitions)
    for raw in textwrap.dedent(script).strip().splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        _step(site, words)
    return [
        f"{round((t.time - start).total_seconds())}s {t.action.value} {t.alert.rule} "
        f"{t.alert.severity.value}"
        for t in site.transitions[before:]
    ]


def _flags(words: list[str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for word in words:
        if word == "replayed":
            fields["replayed"] = True
        elif word.startswith("key="):
            fields["dedupe_key"] = word[4:]
        elif word.startswith("holder="):
            fields["holder"] = word[7:]
        elif word.startswith("card="):
            fields["credential"] = word[5:]
        else:
            raise ValueError(f"unknown flag {word!r}")
    return fields


def _step(site: RuleHarness, words: list[str]) -> None:
    head = words[0]
    if head == "wait":
        site.advance(words[1])
    elif head == "at":
        site.at(words[1])
    elif head == "device":
        driver = site.device(words[1])
        method = {"offline": driver.goes_offline, "online": driver.comes_online}[words[2]]
        method(**_flags(words[3:]))
    elif head == "camera":
        camera = site.camera(words[1])
        verbs = {
            "tamper": camera.tampered,
            "cleared": camera.tamper_cleared,
            "offline": camera.goes_offline,
            "online": camera.comes_online,
        }
        verbs[words[2]](**_flags(words[3:]))
    else:
        driver = (
            site.unmapped_door(head[4:], source="uhppote")
            if head.startswith("ref:")
            else site.door(head)
        )
        getattr(driver, _DOOR_VERBS[words[1]])(**_flags(words[2:]))
