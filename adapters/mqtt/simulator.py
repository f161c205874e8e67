"""Simulated door controllers: realistic uhppoted, esp-rfid and zigbee2mqtt traffic.

Used by ``doorwatch simulate controller`` (integration testing on a real site's broker) and by
``doorwatch demo``. A scenario is a list of timed steps; each controller format renders a step
as the topic and payload that real hardware publishes.

Scenario file (YAML)::

    repeat: true            # loop the steps until stopped
    steps:
      - {at: 0s, action: swipe, door: "405419896:1", card: 8165537, name: Ann Lee}
      - {at: 1s, action: open, door: "405419896:1"}
      - {at: 6s, action: close, door: "405419896:1"}
      - {at: 10s, action: deny, door: "405419896:2", card: 99999}
      - {at: 20s, action: offline, device: "405419896"}
      - {at: 40s, action: online, device: "405419896"}

Actions: ``swipe`` (granted), ``deny``, ``open``, ``close``, ``forced``, ``held``, ``exit``
(request to exit), ``offline``, ``online``, ``heartbeat``. ``door`` is the controller's own
door reference (uhppoted ``<device>:<door>``, a zigbee friendly name, an esp-rfid hostname).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from doorwatch.config.base import Duration
from doorwatch.errors import ConfigError

Action = Literal[
    "swipe", "deny", "open", "close", "forced", "held", "exit", "offline", "online", "heartbeat"
]


class Step(BaseModel):
    """One thing that happens in a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(description="Seconds from the start of the scenario (or loop).")
    action: Action
    door: str | None = None
    device: str | None = None
    card: int | None = None
    name: str | None = None


class Scenario(BaseModel):
    """A timed list of steps, optionally looping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repeat: bool = False
    # A loop is at least this long, so that a looping scenario has a quiet gap at its end.
    period: Duration | None = None
    steps: list[Step] = Field(min_length=1)

    @property
    def length(self) -> float:
        """Seconds one pass takes."""
        last = max(step.at for step in self.steps)
        return max(self.period or 0.0, last + 1.0)


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file; errors name the file and the step."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Scenario.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read scenario: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


@dataclass(frozen=True, slots=True)
class Publication:
    """One MQTT message to publish."""

    topic: str
    payload: bytes
    retain: bool = False


def _json(data: Any) -> bytes:
    return orjson.dumps(data)


class UhppotedFormat:
    """uhppoted-mqtt: events on ``<root>/events/live``, health on ``<root>/system``."""

    name = "uhppoted"
    actions = frozenset(
        {
            "swipe",
            "deny",
            "open",
            "close",
            "forced",
            "held",
            "exit",
            "offline",
            "online",
            "heartbeat",
        }
    )

    def __init__(self, root: str = "uhppoted/gateway") -> None:
        self.root = root
        self._event_ids: dict[str, Iterator[int]] = {}

    def _next_id(self, device: str) -> int:
        counter = self._event_ids.setdefault(device, itertools.count(int(time.time()) % 100_000))
        return next(counter)

    def render(self, step: Step, now: datetime) -> list[Publication]:
        """The messages uhppoted-mqtt publishes for this step."""
        if step.action in {"offline", "online", "heartbeat"}:
            device = step.device or (step.door or "405419896").split(":")[0]
            if step.action == "heartbeat":
                body = {"alive": {"subsystem": "health-check", "message": "OK"}}
            elif step.action == "offline":
                body = {
                    "alert": {
                        "subsystem": "health-check",
                        "message": f"UTC0311-L0x {device} no response for 1m5s",
                    }
                }
            else:
                body = {
                    "alert": {
                        "subsystem": "health-check",
                        "message": f"UTC0311-L0x {device} connected",
                    }
                }
            return [Publication(f"{self.root}/system", _json(body))]
        device, _, door = (step.door or "405419896:1").partition(":")
        reason, event_type, granted = {
            "swipe": (1, 1, True),
            "deny": (6, 1, False),
            "open": (23, 2, True),
            "close": (24, 2, True),
            "forced": (38, 3, False),
            "held": (37, 3, False),
            "exit": (20, 2, True),
        }[step.action]
        texts = {1: "swipe", 6: "no access rights", 23: "door opened", 24: "door closed",
                 38: "forced open", 37: "door open too long", 20: "push button ok"}  # fmt: skip
        event = {
            "access-granted": granted,
            "card-number": step.card or 0,
            "device-id": int(device),
            "direction": 1,
            "direction-text": "in",
            "door-id": int(door or 1),
            "event-id": self._next_id(device),
            "event-reason": reason,
            "event-reason-text": texts[reason],
            "event-type": event_type,
            "event-type-text": {1: "card swipe", 2: "door", 3: "alarm"}[event_type],
            "timestamp": now.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        return [
            Publication(f"{self.root}/events/live", _json({"message": {"event": {"event": event}}}))
        ]


class Zigbee2MqttFormat:
    """zigbee2mqtt contact sensors: ``contact: true`` means closed."""

    name = "zigbee2mqtt"
    actions = frozenset({"open", "close", "offline", "online", "heartbeat"})

    def __init__(self, base: str = "zigbee2mqtt") -> None:
        self.base = base
        self._battery = 97

    def render(self, step: Step, now: datetime) -> list[Publication]:
        """The state or availability message of the sensor."""
        del now  # Sensors send no time of their own.
        device = step.device or step.door or "gym-east-contact"
        if step.action in {"offline", "online"}:
            state = "online" if step.action == "online" else "offline"
            return [
                Publication(
                    f"{self.base}/{device}/availability", _json({"state": state}), retain=True
                )
            ]
        contact = step.action == "close" if step.action != "heartbeat" else True
        body = {"battery": self._battery, "contact": contact, "linkquality": 132, "voltage": 3005}
        return [Publication(f"{self.base}/{device}", _json(body))]


class EspRfidFormat:
    """esp-rfid: JSON events on ``<topic>/send``."""

    name = "esp-rfid"
    actions = frozenset({"swipe", "deny", "open", "close", "forced", "held", "exit", "heartbeat"})

    def __init__(self, topic: str = "esp-rfid") -> None:
        self.topic = topic

    def render(self, step: Step, now: datetime) -> list[Publication]:
        """The ``send`` message for this step."""
        host = step.device or step.door or "esprfid-door"
        base = {"time": int(now.timestamp()), "hostname": host}
        uid = format(step.card or 0, "x")
        event = {"data": "", "cmd": "event"}
        bodies: dict[str, dict[str, Any]] = {
            "swipe": {"type": "access", "isKnown": "true", "access": "Always",
                      "username": step.name or "Staff", "uid": uid, "doorName": host},
            "deny": {"type": "access", "isKnown": "false", "access": "Denied",
                     "username": "Unknown", "uid": uid},
            "exit": {"type": "access", "isKnown": "true", "access": "Always",
                     "username": "Button", "uid": " ", "doorName": host},
            "open": {"type": "INFO", "src": "door", "desc": "Door Open", **event},
            "close": {"type": "INFO", "src": "door", "desc": "Door Closed", **event},
            "forced": {"type": "WARN", "src": "tamper", "desc": "Door was tampered!", **event},
            "held": {"type": "WARN", "src": "tamper",
                     "desc": "Door wasn't closed within max open time!", **event},
            "heartbeat": {"type": "heartbeat", "uptime": 999, "ip": "192.0.2.50"},
        }  # fmt: skip
        return [Publication(f"{self.topic}/send", _json({**bodies[step.action], **base}))]


# Each takes its topic root as the only (optional) argument.
FORMATS: dict[str, type[UhppotedFormat | Zigbee2MqttFormat | EspRfidFormat]] = {
    "uhppoted": UhppotedFormat,
    "zigbee2mqtt": Zigbee2MqttFormat,
    "esp-rfid": EspRfidFormat,
}


def check_scenario(scenario: Scenario, fmt: str) -> None:
    """Refuse steps a format cannot express (a zigbee contact cannot swipe a card)."""
    renderer = FORMATS[fmt]()
    for index, step in enumerate(scenario.steps):
        if step.action not in renderer.actions:
            known = ", ".join(sorted(renderer.actions))
            raise ConfigError(f"steps[{index}]: {fmt} has no {step.action!r}; use one of {known}")


def schedule(
    scenario: Scenario, *, start: float, passes: int | None = None
) -> Iterator[tuple[float, Step]]:
    """(due time on the monotonic clock, step) in order, looping when the scenario repeats."""
    for n in itertools.count():
        if passes is not None and n >= passes:
            return
        offset = start + n * scenario.length
        for step in sorted(scenario.steps, key=lambda s: s.at):
            yield offset + step.at, step
        if not scenario.repeat and passes is None:
            return


def utc_now() -> datetime:
    """Wall time for device timestamps (metadata only)."""
    return datetime.now(UTC)
