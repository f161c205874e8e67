"""The API rules are written against: ``doorwatch.rules.api``.

A rule module defines ``setup(rule)``; doorwatch calls it once with a :class:`RuleContext`,
and the rule subscribes handlers to event kinds and to its own timers::

    from doorwatch.rules.api import Event, EventKind, RuleContext, Timer

    def setup(rule: RuleContext[dict[str, object]]) -> None:
        @rule.on(EventKind.DOOR_OPENED, zones=["perimeter"])
        def opened(event: Event) -> None:
            rule.start_timer(f"open:{event.door}", "2m")

        @rule.on(EventKind.DOOR_CLOSED, include_replayed=True)
        def closed(event: Event) -> None:
            rule.cancel_timer(f"open:{event.door}")
            rule.resolve_alert(event=event, reason="door closed")

        @rule.on_timer("open")
        def still_open(timer: Timer) -> None:
            rule.raise_alert(event=timer.event, title="Perimeter door open: {door_name}")

The guarantees every rule gets, built-in or custom:

* Handlers run one at a time, in journal order, on the engine's clock. ``rule.now()`` is the
  time of what is being handled: the event's ``received_at``, or a timer's due time.
* Replayed events (retained or backlog messages) reach only handlers subscribed with
  ``include_replayed=True``, and nothing may raise or update an alert while handling one; they
  may cancel timers and resolve alerts, because they do describe the present.
* Timers are durable: a pending timer survives a restart and fires on time afterwards. Their
  ``data`` must be JSON; the event that armed a timer comes back as ``timer.event``.
* A handler that raises an exception is logged and skipped; other rules carry on.
* The instance's config (``severity``, ``title``, ``audiences``, ``doors``, ``zones``) applies
  without the rule doing anything: events outside ``doors``/``zones`` never reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import structlog
from pydantic import TypeAdapter

from doorwatch.alerts.model import RaiseAlert, ResolveAlert, UpdateAlert
from doorwatch.config.base import Duration
from doorwatch.config.models import Config
from doorwatch.events import Direction, Event, EventKind, iso
from doorwatch.rules.config import RuleOptions, Severity
from doorwatch.rules.schedules import Schedule
from doorwatch.state import AccessRecord, DoorAlarm, DoorPosition

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from doorwatch.rules.engine import RulesEngine

__all__ = [
    "AccessRecord",
    "DeviceView",
    "Direction",
    "DoorAlarm",
    "DoorPosition",
    "DoorView",
    "Duration",
    "Event",
    "EventHandler",
    "EventKind",
    "RuleContext",
    "Schedule",
    "Severity",
    "Timer",
    "TimerHandler",
]

OptionsT = TypeVar("OptionsT")
EventHandler = Callable[[Event], None]

_DURATION: TypeAdapter[float] = TypeAdapter(Duration)


@dataclass(frozen=True, slots=True)
class Timer:
    """A rule's named timer: pending (from :meth:`RuleContext.timer`) or firing (to handlers)."""

    rule: str
    name: str
    # When it falls due, in UTC; re-arming after a restart counts down to this.
    due_at: datetime
    armed_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    # The event being handled when the timer was started, if any.
    event: Event | None = None
    # Started while handling a replayed event: its handler may not raise alerts either.
    quiet: bool = False

    @property
    def duration(self) -> float:
        """Seconds from arming to due."""
        return (self.due_at - self.armed_at).total_seconds()


TimerHandler = Callable[[Timer], None]


@dataclass(frozen=True, slots=True)
class DoorView:
    """A door as the rules see it: its config and its current state."""

    id: str
    name: str
    zone: str | None
    cameras: tuple[str, ...]
    configured: bool
    position: DoorPosition
    open_since: datetime | None
    locked: bool | None
    alarms: frozenset[DoorAlarm]
    last_access: AccessRecord | None
    last_grant_at: datetime | None
    last_exit_request_at: datetime | None
    held_open_after: float | None
    prealarm_after: float | None
    # As configured; None when the config leaves it to doorwatch to infer.
    access_controlled: bool | None


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A controller, sensor or camera as the rules see it."""

    source: str
    device: str
    online: bool | None
    last_seen: datetime | None
    changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """One handler's interest in some event kinds (engine internal)."""

    rule: RuleContext[Any]
    handler: EventHandler
    kinds: frozenset[EventKind]
    doors: frozenset[str] | None
    zones: frozenset[str] | None
    where: Callable[[Event], bool] | None
    include_replayed: bool


@dataclass(slots=True)
class Cause:
    """What a handler is running for: an event or a timer (engine internal)."""

    at: datetime
    # Stable across re-processing: the event's dedupe key, or the timer's name and due time.
    key: str
    quiet: bool
    event: Event | None = None
    timer: Timer | None = None
    # Commands sent so far per rule: each rule numbers its own, so what one rule does cannot
    # change the triggers of another when a cause is handled again after a crash.
    sent: dict[str, int] = field(default_factory=dict)

    def next_trigger(self, rule: str) -> str:
        """A trigger id for the next command a rule sends while handling this cause."""
        number = self.sent.get(rule, 0)
        self.sent[rule] = number + 1
        return f"{rule}|{self.key}|{number}"


@dataclass(frozen=True, slots=True)
class _Target:
    subject: str
    door: str | None
    door_name: str | None
    camera: str | None
    zone: str | None
    fields: dict[str, str]


class RuleContext(Generic[OptionsT]):
    """One rule instance's handle on doorwatch; what ``setup(rule)`` receives.

    Attributes:
        rule_id: The instance id (``door_held_open``, ``after-hours-office``, ``tailgating``).
        rule_type: The built-in type, or ``custom``.
        settings: The instance's config entry (severity, title, audiences, doors, zones).
        options: The rule's own options: the entry itself for a built-in rule; for a custom
            rule, its ``Options`` model filled from ``options:`` (a dict if it has none).
        config: The whole site config, read-only.
        log: A structlog logger bound to this rule.
    """

    def __init__(
        self,
        engine: RulesEngine,
        *,
        rule_id: str,
        rule_type: str,
        settings: RuleOptions,
        options: OptionsT,
        default_severity: Severity,
        default_title: str,
        catches_unmapped: bool = False,
    ) -> None:
        self._engine = engine
        self.rule_id = rule_id
        self.rule_type = rule_type
        self.settings = settings
        self.options = options
        self.config: Config = engine.config
        self.default_severity = default_severity
        self.default_title = default_title
        # Takes events of unmapped doors although it filters by door/zone (see the engine).
        self.catches_unmapped = catches_unmapped
        self.log = structlog.get_logger("doorwatch.rules").bind(rule=rule_id)
        self.cause: Cause | None = None

    # ----- subscribing -----

    def on(
        self,
        *kinds: EventKind | str,
        doors: Sequence[str] | None = None,
        zones: Sequence[str] | None = None,
        where: Callable[[Event], bool] | None = None,
        include_replayed: bool = False,
    ) -> Callable[[EventHandler], EventHandler]:
        """Decorator form of :meth:`subscribe`."""

        def decorate(handler: EventHandler) -> EventHandler:
            self.subscribe(
                handler,
                *kinds,
                doors=doors,
                zones=zones,
                where=where,
                include_replayed=include_replayed,
            )
            return handler

        return decorate

    def subscribe(
        self,
        handler: EventHandler,
        *kinds: EventKind | str,
        doors: Sequence[str] | None = None,
        zones: Sequence[str] | None = None,
        where: Callable[[Event], bool] | None = None,
        include_replayed: bool = False,
    ) -> None:
        """Call ``handler(event)`` for events of these kinds that pass every filter.

        Args:
            handler: Called with each matching event.
            *kinds: Event kinds (``EventKind.DOOR_OPENED`` or ``"door.opened"``).
            doors: Only these doors (on top of the instance's own ``doors:``).
            zones: Only doors in these zones (on top of the instance's ``zones:``).
            where: Any further test of the event.
            include_replayed: Also receive replayed events (to clear state, never to raise).
        """
        if not kinds:
            raise ValueError("subscribe to at least one event kind")
        self._engine.add_subscription(
            Subscription(
                rule=self,
                handler=handler,
                kinds=frozenset(EventKind(k) for k in kinds),
                doors=frozenset(doors) if doors is not None else None,
                zones=frozenset(zones) if zones is not None else None,
                where=where,
                include_replayed=include_replayed,
            )
        )

    def on_timer(self, prefix: str) -> Callable[[TimerHandler], TimerHandler]:
        """Handle this rule's timers named ``prefix`` or ``prefix:<anything>`` when they fire."""

        def decorate(handler: TimerHandler) -> TimerHandler:
            self._engine.add_timer_handler(self.rule_id, prefix, handler)
            return handler

        return decorate

    # ----- timers -----

    def start_timer(
        self,
        name: str,
        after: float | str | timedelta,
        *,
        data: Mapping[str, Any] | None = None,
        replace: bool = True,
    ) -> Timer:
        """Start (or restart) the timer ``name``, due ``after`` from :meth:`now`.

        Args:
            name: Unique within this rule; ``prefix:key`` lets one handler serve many.
            after: Seconds, ``"45s"``/``"5m"``, or a timedelta.
            data: JSON-serialisable data handed back when it fires.
            replace: Restart a pending timer of the same name (default); if False, keep it.
        """
        seconds = (
            after.total_seconds()
            if isinstance(after, timedelta)
            else _DURATION.validate_python(after)
        )
        return self._engine.start_timer(
            self, name, seconds, _json_data(name, data or {}), replace=replace
        )

    def update_timer(self, name: str, data: Mapping[str, Any]) -> Timer | None:
        """Replace a pending timer's data, keeping its due time; None if it is not pending."""
        return self._engine.update_timer_data(self.rule_id, name, _json_data(name, data))

    def cancel_timer(self, name: str) -> bool:
        """Stop a pending timer; return whether one was pending."""
        return self._engine.cancel_timer(self.rule_id, name)

    def timer(self, name: str) -> Timer | None:
        """The pending timer of this name, if any."""
        return self._engine.get_timer(self.rule_id, name)

    # ----- reading the site -----

    def door(self, door_id: str) -> DoorView:
        """A door's config and current state (any id; unknown ones read as unknown)."""
        return self._engine.door_view(door_id)

    def device(self, source: str, device: str) -> DeviceView:
        """A device's online state."""
        return self._engine.device_view(source, device)

    def now(self) -> datetime:
        """The time of what is being handled (UTC); the clock's time outside handlers."""
        return self.cause.at if self.cause is not None else self._engine.clock.now()

    def stamp(self) -> dict[str, Any]:
        """The moment being handled, for short spans such as a shunt or a burst window.

        Such spans must not stretch or shrink when the wall clock is stepped. The stamp is
        plain JSON, so it fits in timer data; compare two with :meth:`seconds_between`.
        """
        return self._engine.stamp(self.now())

    def seconds_between(self, earlier: Mapping[str, Any], later: Mapping[str, Any]) -> float:
        """Seconds between two :meth:`stamp` s.

        On the monotonic clock where both were taken live since the same boot (a restart of
        the daemon included); on wall time otherwise (after a reboot, or for events handled
        during start-up catch-up).
        """
        return self._engine.seconds_between(earlier, later)

    @property
    def site_zone(self) -> ZoneInfo:
        """The site's time zone."""
        return self._engine.zone

    def local(self, moment: datetime | None = None) -> datetime:
        """A moment (default :meth:`now`) in the site's local time."""
        return (moment or self.now()).astimezone(self._engine.zone)

    def schedule(self, name: str) -> Schedule:
        """A schedule from the config's ``schedules``."""
        return self._engine.schedule(name)

    @property
    def event(self) -> Event | None:
        """The event being handled, or the event that started the timer being handled."""
        cause = self.cause
        if cause is None:
            return None
        return (
            cause.event if cause.event is not None else (cause.timer.event if cause.timer else None)
        )

    def set_door_alarm(self, door: str, alarm: DoorAlarm, *, active: bool) -> None:
        """Show (or clear) an alarm on the console's door board."""
        self._engine.state.mark_alarm(door, alarm, active=active)

    # ----- alerts -----

    @property
    def title_template(self) -> str:
        """The instance's ``title:`` if set, else the rule's default title."""
        return self.settings.title or self.default_title

    @property
    def severity(self) -> Severity:
        """The instance's ``severity:`` if set, else the rule's default severity."""
        return self.settings.severity or self.default_severity

    def subject(
        self, *, event: Event | None = None, door: str | None = None, camera: str | None = None
    ) -> str:
        """The subject an alert about this door/camera/event would have.

        ``door:<id>``, else ``ref:<source>:<door_ref>`` for an unmapped door, else
        ``camera:<id>``, else ``device:<source>:<device>``, else ``site``.
        """
        return self._target(event, None, door, camera).subject

    def has_alert(self, subject: str) -> bool:
        """Whether this rule has a lasting alert open about ``subject`` (as far as it knows)."""
        return self._engine.condition_open(self.rule_id, subject)

    def render_title(
        self,
        template: str | None = None,
        *,
        event: Event | None = None,
        door: str | None = None,
        camera: str | None = None,
    ) -> str:
        """Fill a title template (default :attr:`title_template`) for a door/camera/event."""
        target = self._target(event, None, door, camera)
        return (template or self.title_template).format_map(target.fields)

    def raise_alert(
        self,
        *,
        event: Event | None = None,
        subject: str | None = None,
        door: str | None = None,
        camera: str | None = None,
        severity: Severity | str | None = None,
        title: str | None = None,
        details: Mapping[str, Any] | None = None,
        momentary: bool = False,
    ) -> None:
        """Raise this rule's alert about a subject, or count another occurrence of it.

        Args:
            event: What it is about; door, camera and subject default from it (and from the
                event being handled).
            subject: Overrides the derived subject (one open alert per rule and subject).
            door: The site door id.
            camera: The site camera id.
            severity: Default: the instance's ``severity:``, else the rule's default.
            title: A template used as given; default: the instance's ``title:``, else the
                rule's default title.
            details: Extra JSON facts for the console and receivers.
            momentary: A moment (forced, duress) rather than a lasting condition: nothing will
                resolve it, acknowledging it closes it.
        """
        self._engine.emit(
            self,
            self._raise_command(event, subject, door, camera, severity, title, details, momentary),
        )

    def update_alert(
        self,
        *,
        event: Event | None = None,
        subject: str | None = None,
        door: str | None = None,
        camera: str | None = None,
        severity: Severity | str | None = None,
        title: str | None = None,
        details: Mapping[str, Any] | None = None,
        raise_if_missing: bool = False,
        momentary: bool = False,
    ) -> None:
        """Update this rule's open alert (severity only goes up); no occurrence is counted.

        With ``raise_if_missing``, an alert built from the same arguments is raised when none
        is open, so an escalation alarms even if someone closed the warning before it.
        """
        fallback = self._raise_command(
            event, subject, door, camera, severity, title, details, momentary
        )
        cause = self._require_cause()
        self._engine.emit(
            self,
            UpdateAlert(
                rule=self.rule_id,
                subject=fallback.subject,
                at=cause.at,
                trigger=fallback.trigger,
                # Without a fallback, an update changes only what it is given.
                severity=Severity(severity)
                if severity is not None
                else (fallback.severity if raise_if_missing else None),
                title=fallback.title if title is not None or raise_if_missing else None,
                details=fallback.details,
                fallback=fallback if raise_if_missing else None,
            ),
        )

    def resolve_alert(
        self,
        *,
        reason: str,
        event: Event | None = None,
        subject: str | None = None,
        door: str | None = None,
        camera: str | None = None,
    ) -> None:
        """The condition is over: resolve this rule's open alert about the subject, if any."""
        cause = self._require_cause()
        target = self._target(event, subject, door, camera)
        self._engine.emit(
            self,
            ResolveAlert(
                rule=self.rule_id,
                subject=target.subject,
                at=cause.at,
                trigger=cause.next_trigger(self.rule_id),
                reason=reason,
            ),
        )

    # ----- internals -----

    def _require_cause(self) -> Cause:
        if self.cause is None:
            raise RuntimeError("alerts can only be raised, updated or resolved from a handler")
        return self.cause

    def _raise_command(  # noqa: PLR0917 - the public keywords, passed through in order.
        self,
        event: Event | None,
        subject: str | None,
        door: str | None,
        camera: str | None,
        severity: Severity | str | None,
        title: str | None,
        details: Mapping[str, Any] | None,
        momentary: bool,
    ) -> RaiseAlert:
        cause = self._require_cause()
        target = self._target(event, subject, door, camera)
        source_event = event or self.event
        facts: dict[str, Any] = {}
        if source_event is not None:
            facts["event"] = _event_facts(source_event)
        facts.update(details or {})
        return RaiseAlert(
            rule=self.rule_id,
            rule_type=self.rule_type,
            subject=target.subject,
            severity=Severity(severity) if severity is not None else self.severity,
            title=(title or self.title_template).format_map(target.fields),
            at=cause.at,
            trigger=cause.next_trigger(self.rule_id),
            door=target.door,
            door_name=target.door_name,
            camera=target.camera,
            zone=target.zone,
            audiences=tuple(self.settings.audiences or ()),
            details=facts,
            momentary=momentary,
        )

    def _target(
        self,
        event: Event | None,
        subject: str | None,
        door: str | None,
        camera: str | None,
    ) -> _Target:
        event = event or self.event
        door = door or (event.door if event is not None else None)
        camera = camera or (event.camera if event is not None else None)
        ref = event.door_ref if event is not None and door is None else None
        door_name: str | None = None
        zone: str | None = None
        if door is not None:
            config = self.config.door(door)
            door_name = config.label if config is not None else door
            zone = config.zone if config is not None else None
        elif ref is not None and event is not None:
            door_name = f"unmapped door {ref} ({event.source})"
        if subject is None:
            if door is not None:
                subject = f"door:{door}"
            elif ref is not None and event is not None:
                subject = f"ref:{event.source}:{ref}"
            elif camera is not None:
                subject = f"camera:{camera}"
            elif event is not None:
                subject = f"device:{event.source}:{event.device or event.source}"
            else:
                subject = "site"
        fields = {
            "door_name": door_name or "",
            "door": door or ref or "",
            "zone": zone or "",
            "camera": camera or "",
            "holder": (event.holder if event else None) or "",
            "device": (event.device or event.source) if event else "",
            "source": event.source if event else "",
            "rule": self.rule_id,
            "credential": (event.credential if event else None) or "",
        }
        return _Target(subject, door, door_name, camera, zone, fields)


# Timer data is stored as JSON and read back after a restart; anything that would not come back
# the same (a datetime, a tuple, a dataclass) is refused when the timer is started, not then.
_STRICT_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_data(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    payload = dict(data)
    try:
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(payload, option=_STRICT_JSON))
    except TypeError as exc:
        raise TypeError(f"timer {name!r}: data must be plain JSON ({exc})") from None
    if loaded != payload:
        raise TypeError(
            f"timer {name!r}: data must be plain JSON (dict, list, str, number, bool, None)"
        )
    return loaded


def _event_facts(event: Event) -> dict[str, Any]:
    """What an alert keeps of the event behind it (the credential is already masked)."""
    facts = {
        "kind": event.kind.value,
        "received_at": iso(event.received_at),
        "source": event.source,
        "device": event.device,
        "door_ref": event.door_ref,
        "holder": event.holder,
        "credential": event.credential,
        "dedupe_key": event.dedupe_key,
    }
    return {key: value for key, value in facts.items() if value is not None}
