"""Alerts as data: the model and its lifecycle, the engine-to-alerts seam, an in-memory book.

The rules engine never stores alerts itself. It sends *commands* (:class:`RaiseAlert`,
:class:`UpdateAlert`, :class:`ResolveAlert`) through an :class:`AlertSink`, and the sink applies
the lifecycle and answers with the :class:`AlertTransition` s it made. :class:`AlertBook` is the
in-memory sink that ``doorwatch replay``, the test harness and (until the SQLite store takes its
place) the daemon use; a persistent store implements the same three methods.

Lifecycle (DESIGN.md "Alerts"):

* One unresolved alert per rule and subject. Raising again while it is unresolved counts an
  occurrence (action ``updated``, or ``escalated`` when the severity goes up).
* :class:`UpdateAlert` changes the open alert without counting an occurrence (a held-open
  pre-alarm escalating to the alarm); if none is open it raises its ``fallback``, so an alarm
  never depends on an earlier warning still being open.
* When the condition clears (the propped door closes) the alert is **resolved**:
  ``condition_cleared`` and ``cleared_at`` are set, and ``acknowledged_by``/``acknowledged_at``
  stay as they were, so a console can still list "cleared, never acknowledged" alerts.
* A *momentary* alert (a forced opening, a duress code) has no condition to wait for: it is
  raised with ``condition_cleared`` already set and is resolved by acknowledging it.
* Every command carries a ``trigger``; a command whose trigger was already applied does nothing,
  so the engine may repeat commands after a crash without counting anything twice.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from doorwatch.events import iso, parse_iso
from doorwatch.rules.config import Severity


class AlertState(enum.StrEnum):
    """Where an alert is in its life: active -> acknowledged -> resolved."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# The only moves an alert may make; resolved is final (a new occurrence is a new alert).
_MOVES: dict[AlertState, frozenset[AlertState]] = {
    AlertState.ACTIVE: frozenset({AlertState.ACKNOWLEDGED, AlertState.RESOLVED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset(),
}


class TransitionAction(enum.StrEnum):
    """What a transition did to an alert; the ``action`` of ``doorwatch replay`` output."""

    RAISED = "raised"
    UPDATED = "updated"
    ESCALATED = "escalated"
    # The condition is over but nobody has acknowledged the alert yet: it stays open (the
    # SQLite store; the in-memory book resolves straight away).
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class LifecycleError(ValueError):
    """An operator action that the alert's state does not allow (acknowledging it twice)."""


@dataclass(frozen=True, slots=True)
class Note:
    """A person's note on an alert."""

    at: datetime
    by: str
    text: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"at": iso(self.at), "by": self.by, "text": self.text}


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert as it is at one moment; transitions carry these immutable copies."""

    id: str
    # The rule instance's id (``door_held_open``, ``after-hours-office``) and its type.
    rule: str
    rule_type: str
    # What the alert is about, within its rule: ``door:gym-east``, ``camera:cam-1``, ...
    subject: str
    severity: Severity
    title: str
    site: str
    door: str | None = None
    door_name: str | None = None
    camera: str | None = None
    zone: str | None = None
    raised_at: datetime
    updated_at: datetime
    state: AlertState = AlertState.ACTIVE
    # The condition is over (door closed, device back), whatever people have done about it.
    condition_cleared: bool = False
    cleared_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    notes: tuple[Note, ...] = ()
    occurrences: int = 1
    audiences: tuple[str, ...] = ()
    # A reference to the camera snapshot (a store key or URL), set by whoever captures it.
    snapshot: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    momentary: bool = False

    @property
    def is_open(self) -> bool:
        """Not resolved yet."""
        return self.state is not AlertState.RESOLVED

    def to_json(self) -> dict[str, Any]:
        """JSON form, field names as in the alert API."""
        return {
            "id": self.id,
            "rule": self.rule,
            "rule_type": self.rule_type,
            "subject": self.subject,
            "severity": self.severity.value,
            "title": self.title,
            "site": self.site,
            "door": self.door,
            "door_name": self.door_name,
            "camera": self.camera,
            "zone": self.zone,
            "state": self.state.value,
            "condition_cleared": self.condition_cleared,
            "cleared_at": _iso_or_none(self.cleared_at),
            "raised_at": iso(self.raised_at),
            "updated_at": iso(self.updated_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": _iso_or_none(self.acknowledged_at),
            "resolved_by": self.resolved_by,
            "resolved_at": _iso_or_none(self.resolved_at),
            "notes": [n.to_json() for n in self.notes],
            "occurrences": self.occurrences,
            "audiences": list(self.audiences),
            "snapshot": self.snapshot,
            "details": dict(self.details),
            "momentary": self.momentary,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """Rebuild an alert from :meth:`to_json` (extra keys, as a store may add, are ignored)."""
        return cls(
            id=data["id"],
            rule=data["rule"],
            rule_type=data.get("rule_type") or data["rule"],
            subject=data["subject"],
            severity=Severity(data["severity"]),
            title=data["title"],
            site=data["site"],
            door=data.get("door"),
            door_name=data.get("door_name"),
            camera=data.get("camera"),
            zone=data.get("zone"),
            raised_at=parse_iso(data["raised_at"]),
            updated_at=parse_iso(data.get("updated_at") or data["raised_at"]),
            state=AlertState(data["state"]),
            condition_cleared=bool(data.get("condition_cleared", False)),
            cleared_at=_parse_or_none(data.get("cleared_at")),
            acknowledged_by=data.get("acknowledged_by"),
            acknowledged_at=_parse_or_none(data.get("acknowledged_at")),
            resolved_by=data.get("resolved_by"),
            resolved_at=_parse_or_none(data.get("resolved_at")),
            notes=tuple(
                Note(parse_iso(n["at"]), n["by"], n["text"]) for n in data.get("notes") or ()
            ),
            occurrences=int(data.get("occurrences", 1)),
            audiences=tuple(data.get("audiences") or ()),
            snapshot=data.get("snapshot"),
            details=dict(data.get("details") or {}),
            momentary=bool(data.get("momentary", False)),
        )


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def _parse_or_none(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """One change to one alert: when, what, and the alert as it is afterwards."""

    time: datetime
    action: TransitionAction
    alert: Alert

    def to_json(self) -> dict[str, Any]:
        """The line ``doorwatch replay`` prints for this transition."""
        alert = self.alert
        return {
            "time": iso(self.time),
            "action": self.action.value,
            "alert_id": alert.id,
            "rule": alert.rule,
            "rule_type": alert.rule_type,
            "severity": alert.severity.value,
            "title": alert.title,
            "door": alert.door,
            "camera": alert.camera,
            "zone": alert.zone,
            "subject": alert.subject,
            "state": alert.state.value,
            "occurrences": alert.occurrences,
        }


# ----- the commands the engine sends -----


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseAlert:
    """Raise the alert of ``rule`` about ``subject``, or count another occurrence of it."""

    rule: str
    rule_type: str
    subject: str
    severity: Severity
    title: str
    at: datetime
    # Identifies what caused the command (an event's dedupe key, a timer); repeats are ignored.
    trigger: str
    door: str | None = None
    door_name: str | None = None
    camera: str | None = None
    zone: str | None = None
    audiences: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    # A moment rather than a lasting condition: acknowledging it closes it.
    momentary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateAlert:
    """Change the open alert of ``rule`` about ``subject``; no occurrence is counted.

    The severity only ever goes up (``escalated``). With no open alert, ``fallback`` is raised
    instead (when given), so an escalation still alarms if someone closed the warning.
    """

    rule: str
    subject: str
    at: datetime
    trigger: str
    severity: Severity | None = None
    title: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    fallback: RaiseAlert | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveAlert:
    """The condition behind the alert of ``rule`` about ``subject`` is over."""

    rule: str
    subject: str
    at: datetime
    trigger: str
    reason: str


AlertCommand = RaiseAlert | UpdateAlert | ResolveAlert


class AlertSink(Protocol):
    """Where the rules engine sends its alert commands (the in-memory book, the SQLite store).

    Each method applies one command and returns the transitions it made: none for a repeated
    trigger or an update/resolve with nothing open. Implementations must be idempotent by
    ``trigger`` across restarts; the engine re-sends commands it is not sure were applied.
    """

    async def raise_alert(self, request: RaiseAlert) -> list[AlertTransition]:
        """Raise a new alert or count an occurrence of the open one."""
        ...

    async def update_alert(self, request: UpdateAlert) -> list[AlertTransition]:
        """Update (escalate) the open alert, or raise ``request.fallback``."""
        ...

    async def resolve_alert(self, request: ResolveAlert) -> list[AlertTransition]:
        """The condition cleared: resolve the open alert, if any."""
        ...


async def deliver(sink: AlertSink, command: AlertCommand) -> list[AlertTransition]:
    """Send one command to the sink method that takes it."""
    if isinstance(command, RaiseAlert):
        return await sink.raise_alert(command)
    if isinstance(command, UpdateAlert):
        return await sink.update_alert(command)
    return await sink.resolve_alert(command)


# ----- commands as JSON (the engine's outbox) -----


def command_to_json(command: AlertCommand) -> dict[str, Any]:
    """JSON form of a command, for the engine's durable outbox."""
    if isinstance(command, RaiseAlert):
        return {
            "command": "raise",
            "rule": command.rule,
            "rule_type": command.rule_type,
            "subject": command.subject,
            "severity": command.severity.value,
            "title": command.title,
            "at": iso(command.at),
            "trigger": command.trigger,
            "door": command.door,
            "door_name": command.door_name,
            "camera": command.camera,
            "zone": command.zone,
            "audiences": list(command.audiences),
            "details": dict(command.details),
            "momentary": command.momentary,
        }
    if isinstance(command, UpdateAlert):
        return {
            "command": "update",
            "rule": command.rule,
            "subject": command.subject,
            "at": iso(command.at),
            "trigger": command.trigger,
            "severity": command.severity.value if command.severity else None,
            "title": command.title,
            "details": dict(command.details),
            "fallback": command_to_json(command.fallback) if command.fallback else None,
        }
    return {
        "command": "resolve",
        "rule": command.rule,
        "subject": command.subject,
        "at": iso(command.at),
        "trigger": command.trigger,
        "reason": command.reason,
    }


def command_from_json(data: Mapping[str, Any]) -> AlertCommand:
    """Rebuild a command from :func:`command_to_json` output."""
    kind = data["command"]
    if kind == "raise":
        return RaiseAlert(
            rule=data["rule"],
            rule_type=data["rule_type"],
            subject=data["subject"],
            severity=Severity(data["severity"]),
            title=data["title"],
            at=parse_iso(data["at"]),
            trigger=data["trigger"],
            door=data.get("door"),
            door_name=data.get("door_name"),
            camera=data.get("camera"),
            zone=data.get("zone"),
            audiences=tuple(data.get("audiences") or ()),
            details=dict(data.get("details") or {}),
            momentary=bool(data.get("momentary", False)),
        )
    if kind == "update":
        fallback = data.get("fallback")
        parsed = command_from_json(fallback) if fallback else None
        assert parsed is None or isinstance(parsed, RaiseAlert)
        return UpdateAlert(
            rule=data["rule"],
            subject=data["subject"],
            at=parse_iso(data["at"]),
            trigger=data["trigger"],
            severity=Severity(data["severity"]) if data.get("severity") else None,
            title=data.get("title"),
            details=dict(data.get("details") or {}),
            fallback=parsed,
        )
    if kind == "resolve":
        return ResolveAlert(
            rule=data["rule"],
            subject=data["subject"],
            at=parse_iso(data["at"]),
            trigger=data["trigger"],
            reason=data["reason"],
        )
    raise ValueError(f"unknown alert command {kind!r}")


# ----- the in-memory book -----

# Resolved alerts kept in memory before the oldest are forgotten; enough for a busy week of a
# large school, small enough not to matter in RAM.
_KEEP_RESOLVED = 10_000
# Triggers remembered for idempotency. The engine only repeats commands from its last
# uncommitted batch, so this is far more than is ever needed.
_KEEP_TRIGGERS = 100_000


class AlertBook:
    """Alerts in memory with the lifecycle above; an :class:`AlertSink`.

    The synchronous :meth:`apply` is what replay and the harness call; the async sink methods
    wrap it for the daemon.
    """

    def __init__(
        self,
        *,
        site: str,
        keep_resolved: int = _KEEP_RESOLVED,
        keep_triggers: int = _KEEP_TRIGGERS,
    ) -> None:
        self.site = site
        self._alerts: dict[str, Alert] = {}
        self._open: dict[tuple[str, str], str] = {}
        self._resolved: OrderedDict[str, None] = OrderedDict()
        self._triggers: OrderedDict[str, None] = OrderedDict()
        self._keep_resolved = keep_resolved
        self._keep_triggers = keep_triggers
        self._number = 0

    # ----- reads -----

    def get(self, alert_id: str) -> Alert | None:
        """One alert by id."""
        return self._alerts.get(alert_id)

    def open_alert(self, rule: str, subject: str) -> Alert | None:
        """The unresolved alert of a rule about a subject."""
        alert_id = self._open.get((rule, subject))
        return self._alerts[alert_id] if alert_id is not None else None

    def alerts(
        self,
        *,
        rule: str | None = None,
        state: AlertState | str | None = None,
        door: str | None = None,
        camera: str | None = None,
    ) -> list[Alert]:
        """Alerts matching every given filter, oldest first."""
        wanted = AlertState(state) if state is not None else None
        return [
            a
            for a in self._alerts.values()
            if (rule is None or rule in {a.rule, a.rule_type})
            and (wanted is None or a.state is wanted)
            and (door is None or a.door == door)
            and (camera is None or a.camera == camera)
        ]

    # ----- the sink -----

    async def raise_alert(self, request: RaiseAlert) -> list[AlertTransition]:
        """See :class:`AlertSink`."""
        return self.apply(request)

    async def update_alert(self, request: UpdateAlert) -> list[AlertTransition]:
        """See :class:`AlertSink`."""
        return self.apply(request)

    async def resolve_alert(self, request: ResolveAlert) -> list[AlertTransition]:
        """See :class:`AlertSink`."""
        return self.apply(request)

    def apply(self, command: AlertCommand) -> list[AlertTransition]:
        """Apply one engine command; return the transitions (none for a repeated trigger)."""
        if command.trigger in self._triggers:
            return []
        self._remember(command.trigger)
        if isinstance(command, RaiseAlert):
            return self._raise(command)
        if isinstance(command, UpdateAlert):
            return self._update(command)
        return self._clear(command)

    def _raise(self, request: RaiseAlert) -> list[AlertTransition]:
        current = self.open_alert(request.rule, request.subject)
        at = request.at
        if current is None:
            self._number += 1
            alert = Alert(
                id=f"{at:%Y%m%d}-{self._number}",
                rule=request.rule,
                rule_type=request.rule_type,
                subject=request.subject,
                severity=request.severity,
                title=request.title,
                site=self.site,
                door=request.door,
                door_name=request.door_name,
                camera=request.camera,
                zone=request.zone,
                raised_at=at,
                updated_at=at,
                condition_cleared=request.momentary,
                cleared_at=at if request.momentary else None,
                audiences=request.audiences,
                details=dict(request.details),
                momentary=request.momentary,
            )
            self._open[(alert.rule, alert.subject)] = alert.id
            return [self._store(at, TransitionAction.RAISED, alert)]
        severity = _higher(current.severity, request.severity)
        escalated = severity is not current.severity
        alert = dataclasses.replace(
            current,
            severity=severity,
            title=request.title if escalated else current.title,
            updated_at=at,
            occurrences=current.occurrences + 1,
            # A repeat of a lasting condition means it is back; a repeated moment is over.
            condition_cleared=request.momentary,
            cleared_at=at if request.momentary else None,
            details={**current.details, **request.details},
        )
        action = TransitionAction.ESCALATED if escalated else TransitionAction.UPDATED
        return [self._store(at, action, alert)]

    def _update(self, request: UpdateAlert) -> list[AlertTransition]:
        current = self.open_alert(request.rule, request.subject)
        if current is None:
            return self._raise(request.fallback) if request.fallback is not None else []
        severity = (
            _higher(current.severity, request.severity)
            if request.severity is not None
            else current.severity
        )
        escalated = severity is not current.severity
        alert = dataclasses.replace(
            current,
            severity=severity,
            title=request.title or current.title,
            updated_at=request.at,
            details={**current.details, **request.details},
        )
        action = TransitionAction.ESCALATED if escalated else TransitionAction.UPDATED
        return [self._store(request.at, action, alert)]

    def _clear(self, request: ResolveAlert) -> list[AlertTransition]:
        current = self.open_alert(request.rule, request.subject)
        if current is None:
            return []
        at = request.at
        _check_move(current, AlertState.RESOLVED)
        alert = dataclasses.replace(
            current,
            state=AlertState.RESOLVED,
            condition_cleared=True,
            cleared_at=current.cleared_at if current.momentary else at,
            resolved_at=at,
            resolved_by=None,
            updated_at=at,
            details={**current.details, "resolution": request.reason},
        )
        return [self._store(at, TransitionAction.RESOLVED, alert)]

    # ----- what people do -----

    def acknowledge(
        self, alert_id: str, *, by: str, at: datetime, note: str | None = None
    ) -> list[AlertTransition]:
        """A person has seen the alert; a momentary alert is thereby resolved too."""
        current = self._require(alert_id)
        _check_move(current, AlertState.ACKNOWLEDGED)
        notes = (*current.notes, Note(at, by, note)) if note else current.notes
        acked = dataclasses.replace(
            current,
            state=AlertState.ACKNOWLEDGED,
            acknowledged_by=by,
            acknowledged_at=at,
            updated_at=at,
            notes=notes,
        )
        transitions = [self._store(at, TransitionAction.ACKNOWLEDGED, acked)]
        if acked.condition_cleared:
            resolved = dataclasses.replace(
                acked, state=AlertState.RESOLVED, resolved_by=by, resolved_at=at
            )
            transitions.append(self._store(at, TransitionAction.RESOLVED, resolved))
        return transitions

    def resolve(
        self, alert_id: str, *, by: str, at: datetime, note: str | None = None
    ) -> list[AlertTransition]:
        """A person closes the alert by hand, whether or not its condition has cleared."""
        current = self._require(alert_id)
        _check_move(current, AlertState.RESOLVED)
        notes = (*current.notes, Note(at, by, note)) if note else current.notes
        alert = dataclasses.replace(
            current,
            state=AlertState.RESOLVED,
            resolved_by=by,
            resolved_at=at,
            updated_at=at,
            notes=notes,
        )
        return [self._store(at, TransitionAction.RESOLVED, alert)]

    def add_note(self, alert_id: str, *, by: str, at: datetime, text: str) -> Alert:
        """Append a note; it is not a transition."""
        current = self._require(alert_id)
        alert = dataclasses.replace(current, notes=(*current.notes, Note(at, by, text)))
        self._alerts[alert_id] = alert
        return alert

    # ----- internals -----

    def _require(self, alert_id: str) -> Alert:
        alert = self._alerts.get(alert_id)
        if alert is None:
            raise LifecycleError(f"no alert {alert_id!r}")
        return alert

    def _store(self, at: datetime, action: TransitionAction, alert: Alert) -> AlertTransition:
        self._alerts[alert.id] = alert
        if alert.state is AlertState.RESOLVED:
            self._open.pop((alert.rule, alert.subject), None)
            self._resolved[alert.id] = None
            while len(self._resolved) > self._keep_resolved:
                oldest, _ = self._resolved.popitem(last=False)
                self._alerts.pop(oldest, None)
        return AlertTransition(at, action, alert)

    def _remember(self, trigger: str) -> None:
        self._triggers[trigger] = None
        while len(self._triggers) > self._keep_triggers:
            self._triggers.popitem(last=False)


def _higher(a: Severity, b: Severity) -> Severity:
    return b if b.rank > a.rank else a


def _check_move(alert: Alert, to: AlertState) -> None:
    if to not in _MOVES[alert.state]:
        raise LifecycleError(f"alert {alert.id} is {alert.state.value}; it cannot become {to}")
