"""Checks that ids named in one section exist in another (doors, cameras, schedules, ...)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from doorwatch.config.models import Config


@dataclass(frozen=True, slots=True)
class Reference:
    """A dangling or duplicate reference found in a valid-looking config."""

    loc: tuple[str | int, ...]
    message: str
    hint: str | None


def _suggest(name: str, known: Iterable[str], what: str, section: str) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not known:
        return f"add it under {section}"
    return f"use one of the {what}: " + ", ".join(known[:12])


def _duplicates(ids: list[str]) -> set[str]:
    seen: set[str] = set()
    return {i for i in ids if i in seen or seen.add(i)}  # type: ignore[func-returns-value]


def check_references(config: Config) -> list[Reference]:
    """Return every reference problem; empty when the config hangs together."""
    problems: list[Reference] = []
    doors = {d.id for d in config.doors}
    cameras = {c.id for c in config.cameras}
    schedules = set(config.schedules)

    def door_ref(loc: tuple[str | int, ...], name: str) -> None:
        if name not in doors:
            problems.append(
                Reference(loc, f"no door {name!r}", _suggest(name, doors, "doors", "doors"))
            )

    for section, ids in (
        ("doors", [d.id for d in config.doors]),
        ("controllers", [c.id for c in config.controllers]),
        ("cameras", [c.id for c in config.cameras]),
    ):
        for dup in sorted(_duplicates(ids)):
            index = max(i for i, x in enumerate(ids) if x == dup)
            problems.append(
                Reference((section, index, "id"), f"id {dup!r} is used twice", "give each a unique id")
            )
    for clash in sorted({c.id for c in config.controllers} & cameras):
        index = next(i for i, c in enumerate(config.cameras) if c.id == clash)
        problems.append(
            Reference(
                ("cameras", index, "id"),
                f"id {clash!r} is also a controller id; events would not say where they came from",
                "rename the camera or the controller",
            )
        )
    for d_index, door in enumerate(config.doors):
        for c_index, camera in enumerate(door.cameras):
            if camera not in cameras:
                problems.append(
                    Reference(
                        ("doors", d_index, "cameras", c_index),
                        f"no camera {camera!r}",
                        _suggest(camera, cameras, "cameras", "cameras"),
                    )
                )
    for index, controller in enumerate(config.controllers):
        for ref, door in controller.doors.items():
            door_ref(("controllers", index, "doors", ref), door)
    for index, camera in enumerate(config.cameras):
        for token, door in camera.inputs.items():
            door_ref(("cameras", index, "inputs", token), door)
    for index, rule in enumerate(config.rules):
        for d_index, door in enumerate(rule.doors or []):
            door_ref(("rules", index, "doors", d_index), door)
        schedule = getattr(rule, "schedule", None)
        if schedule is not None and schedule not in schedules:
            problems.append(
                Reference(
                    ("rules", index, "schedule"),
                    f"no schedule {schedule!r}",
                    _suggest(schedule, schedules, "schedules", "schedules"),
                )
            )
    for name, audience in config.notify.audiences.items():
        if audience.on_duty is not None and audience.on_duty not in schedules:
            problems.append(
                Reference(
                    ("notify", "audiences", name, "on_duty"),
                    f"no schedule {audience.on_duty!r}",
                    _suggest(audience.on_duty, schedules, "schedules", "schedules"),
                )
            )
    rule_ids = [rule.id or rule.type for rule in config.rules]
    for dup in sorted(_duplicates([r.id for r in config.rules if r.id])):
        index = max(i for i, r in enumerate(config.rules) if r.id == dup)
        problems.append(
            Reference(("rules", index, "id"), f"rule id {dup!r} is used twice", "give each a unique id")
        )
    del rule_ids
    return problems
