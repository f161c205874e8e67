"""``door_forced_open``: a door opened with no grant, exit request or unlock to explain it.

An opening is explained by an ``access.granted`` (or ``access.duress``) or ``exit.request`` at
that door less than ``shunt`` seconds before it, or by the door being reported unlocked. A
controller's native ``door.forced`` is always an alarm, for mapped and unmapped doors alike;
if it follows doorwatch's own forced alert for the same door within ``shunt`` seconds it is the
same opening and updates that alert rather than counting a second occurrence.

Forced-open is only computed for *access-controlled* doors, since a contact-only door cannot
tell a forced entry from a normal exit. ``access_controlled: true`` or ``false`` on the door
decides. Left unset, a door is access-controlled when a controller with a reader codec
(uhppoted, esp-rfid, axis) maps it, or once any grant or exit request has been seen at it (the
door state, rebuilt from the journal, remembers that across restarts). Unmapped doors are not
guessed at: only their native ``door.forced`` alarms count.

Forced alerts are momentary: there is no condition to wait for, acknowledging one closes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorwatch.config.models import Config
from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import DoorForcedOpenOptions, Severity
from doorwatch.rules.registry import register

# Someone may be inside who should not be: the most urgent thing a door can say.
DEFAULT_SEVERITY = Severity.CRITICAL

# Codecs of controllers that read credentials or exit buttons and report grants and REX.
# zigbee2mqtt and shelly are contact sensors only; generic and mapping may be either, so a
# door behind them is access-controlled once it reports a grant, or when the config says so.
READER_CODECS = frozenset({"uhppoted", "esp-rfid", "axis"})


def reader_doors(config: Config) -> frozenset[str]:
    """Doors mapped by a controller whose codec reports grants and exit requests."""
    return frozenset(
        door
        for controller in config.controllers
        if controller.codec in READER_CODECS
        for door in controller.doors.values()
    )


class _ForcedOpen:
    """The handlers and memory of one ``door_forced_open`` instance.

    The memory is fed in journal order and is not persisted: after a restart the door state
    (rebuilt from the journal) answers for the last grant, exit request and lock state.
    """

    def __init__(self, rule: RuleContext[DoorForcedOpenOptions]) -> None:
        self.rule = rule
        self.shunt = rule.options.shunt
        self.readers = reader_doors(rule.config)
        # Stamps (rule.stamp()): spans between them run on the monotonic clock while live, so
        # a wall-clock step between a badge and the opening neither explains nor forces it.
        self.explained_at: dict[str, dict[str, Any]] = {}
        self.unlocked: dict[str, bool] = {}
        self.open_subjects: set[str] = set()
        self.forced_at: dict[str, dict[str, Any]] = {}

    def access_controlled(self, door: str) -> bool:
        """Whether a grant or exit request could explain an opening of this door."""
        view = self.rule.door(door)
        if view.access_controlled is not None:
            return view.access_controlled
        return (
            door in self.readers
            or door in self.explained_at
            or view.last_grant_at is not None
            or view.last_exit_request_at is not None
        )

    def explained(self, door: str, opened: datetime) -> bool:
        """A grant or exit request within the shunt before ``opened``, or an unlocked door."""
        seen = self.explained_at.get(door)
        since: float | None
        if seen is not None:
            since = self.rule.seconds_between(seen, self.rule.stamp())
        else:
            view = self.rule.door(door)
            # The state may be ahead of us (catch-up): only moments before the opening count.
            earlier = [
                t for t in (view.last_grant_at, view.last_exit_request_at) if t and t <= opened
            ]
            since = (opened - max(earlier)).total_seconds() if earlier else None
        if since is not None and 0 <= since < self.shunt:
            return True
        unlocked = self.unlocked.get(door)
        return unlocked if unlocked is not None else self.rule.door(door).locked is False

    def explainer(self, event: Event) -> None:
        """Remember a grant or exit request (replayed ones too: they are facts)."""
        if event.door is not None:
            # Handled in journal order, which is arrival order: the latest is the newest.
            self.explained_at[event.door] = self.rule.stamp()

    def lock(self, event: Event) -> None:
        """Remember whether the door is locked."""
        if event.door is not None:
            self.unlocked[event.door] = event.kind is EventKind.DOOR_UNLOCKED

    def closed(self, event: Event) -> None:
        """The opening is over."""
        self.open_subjects.discard(self.rule.subject(event=event))

    def opened(self, event: Event) -> None:
        """Judge an opening."""
        subject = self.rule.subject(event=event)
        already_open = subject in self.open_subjects
        self.open_subjects.add(subject)
        if event.replayed or already_open or event.door is None:
            # Replayed input never raises; a repeated "opened" is the same opening; an
            # unmapped contact has no config to say whether it is access-controlled.
            return
        if not self.access_controlled(event.door) or self.explained(event.door, event.received_at):
            return
        self.forced_at[subject] = self.rule.stamp()
        self.rule.raise_alert(
            event=event, momentary=True, details={"computed": True, "shunt_s": self.shunt}
        )

    def native(self, event: Event) -> None:
        """The controller's own forced alarm."""
        subject = self.rule.subject(event=event)
        self.open_subjects.add(subject)
        details = {"native": True, "reason": event.reason}
        ours = self.forced_at.get(subject)
        since = self.rule.seconds_between(ours, self.rule.stamp()) if ours is not None else None
        if since is not None and 0 <= since < self.shunt:
            self.rule.update_alert(event=event, details=details)
            return
        self.rule.raise_alert(event=event, momentary=True, details=details)


@register(
    "door_forced_open",
    options=DoorForcedOpenOptions,
    severity=DEFAULT_SEVERITY,
    title="Door forced open: {door_name}",
    catches_unmapped=True,
)
def setup(rule: RuleContext[DoorForcedOpenOptions]) -> None:
    """Subscribe the forced-open handlers."""
    forced = _ForcedOpen(rule)
    rule.subscribe(
        forced.explainer,
        EventKind.ACCESS_GRANTED,
        EventKind.ACCESS_DURESS,
        EventKind.EXIT_REQUEST,
        include_replayed=True,
    )
    rule.subscribe(
        forced.lock, EventKind.DOOR_LOCKED, EventKind.DOOR_UNLOCKED, include_replayed=True
    )
    rule.subscribe(forced.closed, EventKind.DOOR_CLOSED, include_replayed=True)
    rule.subscribe(forced.opened, EventKind.DOOR_OPENED, include_replayed=True)
    rule.subscribe(forced.native, EventKind.DOOR_FORCED)
