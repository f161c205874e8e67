"""The canonical event every adapter produces, and helpers that keep it safe to show."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class EventKind(enum.StrEnum):
    """Every kind of canonical event; names are part of the contract."""

    DOOR_OPENED = "door.opened"
    DOOR_CLOSED = "door.closed"
    DOOR_FORCED = "door.forced"
    DOOR_HELD_OPEN = "door.held_open"
    DOOR_HELD_WARNING = "door.held_warning"
    DOOR_ALARM_CLEARED = "door.alarm_cleared"
    DOOR_LOCKED = "door.locked"
    DOOR_UNLOCKED = "door.unlocked"
    ACCESS_GRANTED = "access.granted"
    ACCESS_DENIED = "access.denied"
    ACCESS_DURESS = "access.duress"
    EXIT_REQUEST = "exit.request"
    DEVICE_ONLINE = "device.online"
    DEVICE_OFFLINE = "device.offline"
    DEVICE_HEARTBEAT = "device.heartbeat"
    CAMERA_MOTION = "camera.motion"
    CAMERA_MOTION_STOPPED = "camera.motion_stopped"
    CAMERA_TAMPER = "camera.tamper"
    CAMERA_TAMPER_CLEARED = "camera.tamper_cleared"
    INPUT_ACTIVE = "input.active"
    INPUT_INACTIVE = "input.inactive"
    UNKNOWN = "unknown"


class Direction(enum.StrEnum):
    """Which way a person passed a reader."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One thing that happened at the site, in doorwatch's own words.

    Adapters build it from vendor payloads; nothing downstream knows a vendor format.
    """

    kind: EventKind
    # The adapter instance's configured id (a controller or camera entry of the config).
    source: str
    # Controller serial, hostname, zigbee friendly name or camera id.
    device: str | None = None
    # The site's door id once resolved through config; the source's own reference before.
    door: str | None = None
    # The source's own door reference (uhppoted "405419896:1", a zigbee name, a DoorToken).
    door_ref: str | None = None
    # The site's camera id, when the event came from or concerns a camera.
    camera: str | None = None
    # A masked card number or UID; never a raw credential and never a PIN.
    credential: str | None = None
    # The credential holder's name as the source reports it.
    holder: str | None = None
    direction: Direction | None = None
    # The source's own reason code or text, kept for the audit trail.
    reason: str | None = None
    # The device's clock, in UTC, only where the source's clock can be trusted.
    device_time: datetime | None = None
    # When doorwatch received it (UTC): the only clock schedules and timers use.
    received_at: datetime
    # Retained, start-up or backlog messages: they update state and never raise alerts.
    replayed: bool = False
    # Stable across redeliveries, so a redelivered message is recognised and dropped.
    dedupe_key: str

    def replace(self, **changes: Any) -> Event:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form printed by ``doorwatch decode`` and stored in the journal."""
        return {
            "kind": self.kind.value,
            "source": self.source,
            "device": self.device,
            "door": self.door,
            "door_ref": self.door_ref,
            "camera": self.camera,
            "credential": self.credential,
            "holder": self.holder,
            "direction": self.direction.value if self.direction else None,
            "reason": self.reason,
            "device_time": iso(self.device_time) if self.device_time else None,
            "received_at": iso(self.received_at),
            "replayed": self.replayed,
            "dedupe_key": self.dedupe_key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        """Build an event from its JSON form (journal rows, replay files, the generic codec)."""
        direction = data.get("direction")
        device_time = data.get("device_time")
        return cls(
            kind=EventKind(data["kind"]),
            source=data["source"],
            device=data.get("device"),
            door=data.get("door"),
            door_ref=data.get("door_ref"),
            camera=data.get("camera"),
            credential=data.get("credential"),
            holder=data.get("holder"),
            direction=Direction(direction) if direction else None,
            reason=data.get("reason"),
            device_time=parse_iso(device_time) if device_time else None,
            received_at=parse_iso(data["received_at"]),
            replayed=bool(data.get("replayed", False)),
            dedupe_key=data["dedupe_key"],
        )


def iso(moment: datetime) -> str:
    """Format a UTC moment as ISO-8601 with a ``Z`` and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse ISO-8601; a naive value is taken as UTC, the result is always UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utcnow() -> datetime:
    """Return the current wall time in UTC."""
    return datetime.now(UTC)


# Card numbers are personal data: only the last few digits are kept, enough for a guard to
# tell two cards apart on the console, not enough to clone or look one up.
_VISIBLE_DIGITS = 4


# What mask_credential returns: stars, then at most the visible tail.
_ALREADY_MASKED = re.compile(r"\*{4,}[^*]{0,4}")


def mask_credential(raw: str | int | None) -> str | None:
    """Mask a card number or UID for display, logs and storage (``****5537``)."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    if _ALREADY_MASKED.fullmatch(text):
        return text  # Masked upstream (our own form); anything else is masked again.
    text = text.lstrip("*") or text
    visible = text[-_VISIBLE_DIGITS:] if len(text) > _VISIBLE_DIGITS else text[-1:]
    return "*" * max(4, len(text) - len(visible)) + visible


def content_key(prefix: str, *parts: object) -> str:
    """Build a dedupe key from the parts that identify one occurrence of an event."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:20]
    return f"{prefix}:{digest}"
