"""Door and device state, fed by events and rebuilt from the journal at start-up."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doorwatch.events import Direction, Event, EventKind, iso


class DoorPosition(enum.StrEnum):
    """Whether a door is open, as far as the contacts tell."""

    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


class DoorAlarm(enum.StrEnum):
    """Alarm conditions a door can be in at once (native or raised by rules)."""

    FORCED = "forced"
    HELD = "held"
    HELD_WARNING = "held_warning"


@dataclass(slots=True)
class AccessRecord:
    """The last access attempt at a door."""

    at: datetime
    granted: bool
    holder: str | None
    credential: str | None
    direction: Direction | None
    kind: EventKind


@dataclass(slots=True)
class DoorState:
    """What doorwatch knows about one door right now."""

    door: str
    position: DoorPosition = DoorPosition.UNKNOWN
    since: datetime | None = None
    locked: bool | None = None
    alarms: set[DoorAlarm] = field(default_factory=set)
    last_access: AccessRecord | None = None
    last_grant_at: datetime | None = None
    last_exit_request_at: datetime | None = None
    last_event_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON for the API and the console's door board."""
        access = self.last_access
        return {
            "door": self.door,
            "position": self.position.value,
            "since": iso(self.since) if self.since else None,
            "locked": self.locked,
            "alarms": sorted(a.value for a in self.alarms),
            "last_access": None
            if access is None
            else {
                "at": iso(access.at),
                "granted": access.granted,
                "holder": access.holder,
                "credential": access.credential,
                "direction": access.direction.value if access.direction else None,
                "kind": access.kind.value,
            },
            "last_grant_at": iso(self.last_grant_at) if self.last_grant_at else None,
            "last_exit_request_at": iso(self.last_exit_request_at)
            if self.last_exit_request_at
            else None,
            "last_event_at": iso(self.last_event_at) if self.last_event_at else None,
        }


@dataclass(slots=True)
class DeviceState:
    """What doorwatch knows about one controller, sensor or camera."""

    source: str
    device: str
    online: bool | None = None
    last_seen: datetime | None = None
    changed_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON for the API."""
        return {
            "source": self.source,
            "device": self.device,
            "online": self.online,
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "changed_at": iso(self.changed_at) if self.changed_at else None,
        }


_POSITION_AFTER = {
    EventKind.DOOR_OPENED: DoorPosition.OPEN,
    EventKind.DOOR_FORCED: DoorPosition.OPEN,
    EventKind.DOOR_HELD_OPEN: DoorPosition.OPEN,
    EventKind.DOOR_CLOSED: DoorPosition.CLOSED,
}
_ALARMS_RAISED = {
    EventKind.DOOR_FORCED: {DoorAlarm.FORCED},
    EventKind.DOOR_HELD_OPEN: {DoorAlarm.HELD},
    EventKind.DOOR_HELD_WARNING: {DoorAlarm.HELD_WARNING},
}
_ACCESS_KINDS = {EventKind.ACCESS_GRANTED, EventKind.ACCESS_DENIED, EventKind.ACCESS_DURESS}

DoorListener = Callable[[DoorState], None]


class StateStore:
    """Holds door and device state; tells listeners when a door's state changes."""

    def __init__(self, door_ids: Iterable[str] = ()) -> None:
        self.doors: dict[str, DoorState] = {d: DoorState(d) for d in door_ids}
        self.devices: dict[tuple[str, str], DeviceState] = {}
        self._listeners: list[DoorListener] = []

    def subscribe(self, listener: DoorListener) -> None:
        """Call ``listener`` with the door's new state after each change."""
        self._listeners.append(listener)

    def door(self, door_id: str) -> DoorState:
        """The state of a door (unknown if nothing has been heard of it)."""
        state = self.doors.get(door_id)
        if state is None:
            state = self.doors[door_id] = DoorState(door_id)
        return state

    def device(self, source: str, device: str) -> DeviceState:
        """The state of a device."""
        key = (source, device)
        state = self.devices.get(key)
        if state is None:
            state = self.devices[key] = DeviceState(source, device)
        return state

    def apply(self, event: Event) -> None:
        """Update state from one event (replayed events included: they are state)."""
        door = self._apply(event)
        if door is not None:
            self._notify(door)

    def apply_batch(self, events: Iterable[Event]) -> None:
        """Update state from events in order; tell listeners once per changed door, at the end.

        A busy door produces many access events per journal batch; consoles only need its
        state after the batch, so rendering it once per batch keeps ingest fast.
        """
        changed: dict[str, DoorState] = {}
        for event in events:
            door = self._apply(event)
            if door is not None:
                changed[door.door] = door
        for door in changed.values():
            self._notify(door)

    def _apply(self, event: Event) -> DoorState | None:
        """Update state; return the door if its state changed."""
        at = event.received_at
        self._apply_device(event, at)
        if event.door is None:
            return None
        door = self.door(event.door)
        if door.last_event_at is not None and at < door.last_event_at:
            # A late event (the uhppoted feed lags live) must not roll the door back in time.
            return door if self._apply_access(door, event, at) else None
        changed = self._apply_door(door, event, at) | self._apply_access(door, event, at)
        door.last_event_at = at
        return door if changed else None

    def _notify(self, door: DoorState) -> None:
        for listener in self._listeners:
            listener(door)

    def _apply_device(self, event: Event, at: datetime) -> None:
        device_id = event.device or event.camera
        if device_id is None:
            return
        device = self.device(event.source, device_id)
        device.last_seen = at
        if event.kind is EventKind.DEVICE_OFFLINE:
            if device.online is not False:
                device.changed_at = at
            device.online = False
        elif device.online is not True:
            device.online = True
            device.changed_at = at

    def _apply_door(self, door: DoorState, event: Event, at: datetime) -> bool:
        before = (door.position, frozenset(door.alarms), door.locked)
        kind = event.kind
        position = _POSITION_AFTER.get(kind)
        if position is not None and door.position is not position:
            door.position, door.since = position, at
        door.alarms |= _ALARMS_RAISED.get(kind, set())
        if kind is EventKind.DOOR_CLOSED:
            door.alarms -= {DoorAlarm.HELD, DoorAlarm.HELD_WARNING}
        elif kind is EventKind.DOOR_ALARM_CLEARED:
            door.alarms.clear()
        elif kind in {EventKind.DOOR_LOCKED, EventKind.DOOR_UNLOCKED}:
            door.locked = kind is EventKind.DOOR_LOCKED
        return before != (door.position, frozenset(door.alarms), door.locked)

    def _apply_access(self, door: DoorState, event: Event, at: datetime) -> bool:
        kind = event.kind
        if kind in _ACCESS_KINDS:
            if door.last_access is None or door.last_access.at <= at:
                door.last_access = AccessRecord(
                    at=at,
                    granted=kind is not EventKind.ACCESS_DENIED,
                    holder=event.holder,
                    credential=event.credential,
                    direction=event.direction,
                    kind=kind,
                )
            if kind is not EventKind.ACCESS_DENIED and (
                door.last_grant_at is None or door.last_grant_at < at
            ):
                door.last_grant_at = at
            return True
        if kind is EventKind.EXIT_REQUEST:
            if door.last_exit_request_at is None or door.last_exit_request_at < at:
                door.last_exit_request_at = at
            return True
        return False

    def mark_alarm(self, door_id: str, alarm: DoorAlarm, *, active: bool) -> None:
        """Set or clear an alarm raised by a rule (held open computed by doorwatch)."""
        door = self.door(door_id)
        before = frozenset(door.alarms)
        if active:
            door.alarms.add(alarm)
        else:
            door.alarms.discard(alarm)
        if before != door.alarms:
            self._notify(door)
