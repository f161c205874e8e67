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
    return [
        *_unique_ids(config),
        *_door_references(config),
        *_camera_references(config),
        *_schedule_references(config),
    ]


def _unique_ids(config: Config) -> list[Reference]:
    problems: list[Reference] = []
    for section, ids in (
        ("doors", [d.id for d in config.doors]),
        ("controllers", [c.id for c in config.controllers]),
        ("cameras", [c.id for c in config.cameras]),
        ("rules", [r.id for r in config.rules]),
    ):
        for dup in sorted(_duplicates([i for i in ids if i is not None])):
            index = max(i for i, x in enumerate(ids) if x == dup)
            problems.append(
                Reference(
                    (section, index, "id"), f"id {dup!r} is used twice", "give each a unique id"
                )
            )
    cameras = {c.id for c in config.cameras}
    for clash in sorted({c.id for c in config.controllers} & cameras):
        index = next(i for i, c in enumerate(config.cameras) if c.id == clash)
        problems.append(
            Reference(
                ("cameras", index, "id"),
                f"id {clash!r} is also a controller id; events would not say where they came from",
                "rename the camera or the controller",
            )
        )
    return problems


def _door_references(config: Config) -> list[Reference]:
    doors = {d.id for d in config.doors}
    named: list[tuple[tuple[str | int, ...], str]] = []
    for index, controller in enumerate(config.controllers):
        named += [(("controllers", index, "doors", ref), d) for ref, d in controller.doors.items()]
    for index, camera in enumerate(config.cameras):
        named += [(("cameras", index, "inputs", token), d) for token, d in camera.inputs.items()]
    for index, rule in enumerate(config.rules):
        named += [(("rules", index, "doors", i), d) for i, d in enumerate(rule.doors or [])]
    return [
        Reference(loc, f"no door {door!r}", _suggest(door, doors, "doors", "doors"))
        for loc, door in named
        if door not in doors
    ]


def _camera_references(config: Config) -> list[Reference]:
    cameras = {c.id for c in config.cameras}
    return [
        Reference(
            ("doors", d_index, "cameras", c_index),
            f"no camera {camera!r}",
            _suggest(camera, cameras, "cameras", "cameras"),
        )
        for d_index, door in enumerate(config.doors)
        for c_index, camera in enumerate(door.cameras)
        if camera not in cameras
    ]


def _schedule_references(config: Config) -> list[Reference]:
    schedules = set(config.schedules)
    named: list[tuple[tuple[str | int, ...], str]] = []
    for index, rule in enumerate(config.rules):
        schedule = getattr(rule, "schedule", None)
        if schedule is not None:
            named.append((("rules", index, "schedule"), schedule))
    for name, audience in config.notify.audiences.items():
        if audience.on_duty is not None:
            named.append((("notify", "audiences", name, "on_duty"), audience.on_duty))
    return [
        Reference(loc, f"no schedule {name!r}", _suggest(name, schedules, "schedules", "schedules"))
        for loc, name in named
        if name not in schedules
    ]
