"""The rules engine: events and timers in, alert commands and timer changes out.

The engine is synchronous and knows nothing of storage. It dispatches each event to the
handlers subscribed to its kind (after the door/zone filters), runs timers on an injected
:class:`~doorwatch.rules.clock.Clock`, and collects what the rules asked for in
:class:`EngineChanges`: alert commands to send, timers started or stopped, and lasting alert
conditions opened or closed. Whoever drives it takes the changes: ``doorwatch replay`` and the
test harness apply them to an in-memory book at once; the daemon's
:class:`~doorwatch.rules.service.RulesService` writes them to SQLite with its journal cursor in
one transaction first, which is what makes timers survive a restart.

Timing: a timer is due ``after`` seconds from the *logical time* of what started it (the
event's ``received_at``, or the due time of the timer being handled). It is armed on the
clock's monotonic time for the part of that delay still ahead, so an event handled late (the
catch-up after a crash) is not given its full delay again, and a wall clock stepped back never
makes a timer longer. After a restart, :meth:`RulesEngine.restore` re-arms persisted timers for
what is left until their stored wall-clock due time. During catch-up, :meth:`fire_due_by` fires
timers that fell due before the next event, so the outcome matches live processing.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from doorwatch.alerts.model import AlertCommand, RaiseAlert, ResolveAlert
from doorwatch.config.models import Config
from doorwatch.events import Event, EventKind, iso, parse_iso
from doorwatch.rules.api import (
    Cause,
    DeviceView,
    DoorView,
    RuleContext,
    Subscription,
    Timer,
    TimerHandler,
)
from doorwatch.rules.clock import Clock, TimerHandle
from doorwatch.rules.loader import RuleLoadError, RuleProblem, rule_specs, setup_failure
from doorwatch.rules.schedules import Schedule
from doorwatch.state import DoorState, StateStore

log = structlog.get_logger(__name__)

TimerKey = tuple[str, str]
ConditionKey = tuple[str, str]

# Dedupe keys remembered to drop a repeated event. The journal already drops redeliveries in
# the daemon; this covers replay files and sources that send one event twice in a burst.
_SEEN_KEYS = 10_000


@dataclass(slots=True)
class EngineChanges:
    """What the rules asked for since the last :meth:`RulesEngine.take_changes`."""

    commands: list[AlertCommand] = field(default_factory=list)
    # Timers started (the timer) or stopped/fired (None), by (rule, name).
    timers: dict[TimerKey, Timer | None] = field(default_factory=dict)
    # Lasting alerts opened (True) or cleared (False), by (rule, subject).
    conditions: dict[ConditionKey, bool] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.commands or self.timers or self.conditions)

    def merge(self, later: EngineChanges) -> None:
        """Fold in changes made after these."""
        self.commands.extend(later.commands)
        self.timers.update(later.timers)
        self.conditions.update(later.conditions)


@dataclass(slots=True)
class _Pending:
    timer: Timer
    handle: TimerHandle
    seq: int


class RulesEngine:
    """Runs the configured rules over events and timers."""

    def __init__(
        self,
        config: Config,
        state: StateStore,
        clock: Clock,
        *,
        on_output: Callable[[], None] | None = None,
    ) -> None:
        """Set up every enabled rule; raise RuleLoadError listing every rule that cannot be.

        Args:
            config: The site config; its ``rules`` are set up in order.
            state: Door and device state, kept up to date by whoever feeds the engine.
            clock: Timers run on it.
            on_output: Called after a timer fired outside :meth:`process` and left changes.
        """
        self.config = config
        self.state = state
        self.clock = clock
        self.on_output = on_output
        self.zone = ZoneInfo(config.site.timezone)
        self.handler_errors = 0
        self.rules: dict[str, RuleContext[Any]] = {}
        self._subscriptions: dict[EventKind, list[Subscription]] = defaultdict(list)
        self._timer_handlers: dict[str, list[tuple[str, TimerHandler]]] = defaultdict(list)
        self._timers: dict[TimerKey, _Pending] = {}
        self._conditions: set[ConditionKey] = set()
        self._changes = EngineChanges()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._schedules: dict[str, Schedule] = {}
        self._seq = itertools.count()
        self._held = False
        # A monotonic reading is only compared with one from the same timeline (see Clock.epoch).
        self._boot = clock.epoch
        self._deferred: set[TimerKey] = set()
        self._zones = {d.id: d.zone for d in config.doors}
        self._doors_of_source: dict[str, tuple[str, ...]] = {
            c.id: tuple(dict.fromkeys(c.doors.values())) for c in config.controllers
        }
        cameras: dict[str, list[str]] = defaultdict(list)
        for door in config.doors:
            for camera_id in door.cameras:
                cameras[camera_id].append(door.id)
        for camera in config.cameras:
            cameras[camera.id].extend(camera.inputs.values())
        self._doors_of_camera = {c: tuple(dict.fromkeys(d)) for c, d in cameras.items()}
        self._set_up_rules()

    def _set_up_rules(self) -> None:
        problems: list[RuleProblem] = []
        specs = rule_specs(self.config)
        for spec in specs:
            context: RuleContext[Any] = RuleContext(
                self,
                rule_id=spec.rule_id,
                rule_type=spec.rule_type,
                settings=spec.settings,
                options=spec.options,
                default_severity=spec.severity,
                default_title=spec.title,
            )
            self.rules[spec.rule_id] = context
            try:
                spec.setup(context)
            except Exception as exc:  # noqa: BLE001 - reported with the rule's key path.
                problems.append(setup_failure(spec, exc))
        if problems:
            raise RuleLoadError(problems)
        # When every instance of a type that catches unmapped doors filters by door or zone,
        # the first one takes them; an unfiltered instance takes them anyway.
        by_type: dict[str, list[RuleContext[Any]]] = defaultdict(list)
        for spec in specs:
            if spec.catches_unmapped:
                by_type[spec.rule_type].append(self.rules[spec.rule_id])
        for contexts in by_type.values():
            if all(_filters_doors(c) for c in contexts):
                contexts[0].catches_unmapped = True

    # ----- what the rule API calls -----

    def add_subscription(self, subscription: Subscription) -> None:
        """Register a handler for its event kinds."""
        for kind in subscription.kinds:
            self._subscriptions[kind].append(subscription)

    def add_timer_handler(self, rule: str, prefix: str, handler: TimerHandler) -> None:
        """Register a handler for a rule's timers named ``prefix`` or ``prefix:...``."""
        self._timer_handlers[rule].append((prefix, handler))

    def start_timer(
        self,
        context: RuleContext[Any],
        name: str,
        seconds: float,
        data: dict[str, Any],
        *,
        replace: bool,
    ) -> Timer:
        """Start a rule's timer, due ``seconds`` after the logical time of the cause."""
        key = (context.rule_id, name)
        pending = self._timers.get(key)
        if pending is not None:
            if not replace:
                return pending.timer
            pending.handle.cancel()
        cause = context.cause
        at = cause.at if cause is not None else self.clock.now()
        timer = Timer(
            rule=context.rule_id,
            name=name,
            due_at=at + timedelta(seconds=seconds),
            armed_at=at,
            data=data,
            event=context.event,
            quiet=cause.quiet if cause is not None else False,
        )
        self._arm(timer)
        self._changes.timers[key] = timer
        return timer

    def update_timer_data(self, rule: str, name: str, data: dict[str, Any]) -> Timer | None:
        """Replace a pending timer's data, keeping its due time."""
        pending = self._timers.get((rule, name))
        if pending is None:
            return None
        pending.timer = dataclasses.replace(pending.timer, data=data)
        self._changes.timers[(rule, name)] = pending.timer
        return pending.timer

    def cancel_timer(self, rule: str, name: str) -> bool:
        """Stop a pending timer."""
        pending = self._timers.pop((rule, name), None)
        if pending is None:
            return False
        pending.handle.cancel()
        self._changes.timers[(rule, name)] = None
        return True

    def get_timer(self, rule: str, name: str) -> Timer | None:
        """A pending timer."""
        pending = self._timers.get((rule, name))
        return pending.timer if pending is not None else None

    @property
    def timers(self) -> list[Timer]:
        """Every pending timer, soonest first."""
        return sorted((p.timer for p in self._timers.values()), key=lambda t: t.due_at)

    def emit(self, context: RuleContext[Any], command: AlertCommand) -> None:
        """Queue an alert command from a rule (replayed causes may only resolve)."""
        cause = context.cause
        if cause is not None and cause.quiet and not isinstance(command, ResolveAlert):
            log.debug("replayed input never raises", rule=context.rule_id, subject=command.subject)
            return
        key = (command.rule, command.subject)
        if isinstance(command, ResolveAlert):
            # Only lasting alerts this engine opened are resolved: a door closing thousands of
            # times a day then costs nothing downstream.
            if key not in self._conditions:
                return
            self._conditions.discard(key)
            self._changes.conditions[key] = False
        else:
            raised = command if isinstance(command, RaiseAlert) else command.fallback
            if raised is not None and not raised.momentary and key not in self._conditions:
                self._conditions.add(key)
                self._changes.conditions[key] = True
        self._changes.commands.append(command)

    def condition_open(self, rule: str, subject: str) -> bool:
        """Whether a lasting alert of ``rule`` about ``subject`` is open, as far as we know."""
        return (rule, subject) in self._conditions

    def door_view(self, door_id: str) -> DoorView:
        """A door's config and state, read-only."""
        config = self.config.door(door_id)
        state = self.state.doors.get(door_id) or DoorState(door_id)
        return DoorView(
            id=door_id,
            name=config.label if config is not None else door_id,
            zone=config.zone if config is not None else None,
            cameras=tuple(config.cameras) if config is not None else (),
            configured=config is not None,
            position=state.position,
            open_since=state.since,
            locked=state.locked,
            alarms=frozenset(state.alarms),
            last_access=state.last_access,
            last_grant_at=state.last_grant_at,
            last_exit_request_at=state.last_exit_request_at,
            held_open_after=config.held_open_after if config is not None else None,
            prealarm_after=config.prealarm_after if config is not None else None,
            access_controlled=config.access_controlled if config is not None else None,
        )

    def device_view(self, source: str, device: str) -> DeviceView:
        """A device's state, read-only."""
        state = self.state.devices.get((source, device))
        if state is None:
            return DeviceView(source, device, None, None, None)
        return DeviceView(source, device, state.online, state.last_seen, state.changed_at)

    def schedule(self, name: str) -> Schedule:
        """A configured schedule, judged in the site's zone."""
        schedule = self._schedules.get(name)
        if schedule is None:
            config = self.config.schedules.get(name)
            if config is None:
                known = ", ".join(sorted(self.config.schedules)) or "none"
                raise KeyError(f"no schedule {name!r} (configured: {known})")
            schedule = self._schedules[name] = Schedule(name, config, self.zone)
        return schedule

    # ----- what the driver calls -----

    def process(self, event: Event) -> None:
        """Run every matching handler for one event (state must already include it)."""
        if event.dedupe_key in self._seen:
            log.debug("duplicate event ignored by rules", dedupe_key=event.dedupe_key)
            return
        self._seen[event.dedupe_key] = None
        if len(self._seen) > _SEEN_KEYS:
            self._seen.popitem(last=False)
        subscriptions = self._subscriptions.get(event.kind)
        if not subscriptions:
            return
        cause = Cause(at=event.received_at, key=event.dedupe_key, quiet=event.replayed, event=event)
        for subscription in subscriptions:
            if event.replayed and not subscription.include_replayed:
                continue
            if not self._passes_filters(subscription, event):
                continue
            self._run(subscription.rule, cause, _filtered(subscription), event)

    def fire_due_by(self, moment: datetime) -> int:
        """Fire, in order, every timer due at or before ``moment`` (catch-up); return how many."""
        fired = 0
        while True:
            due = [p for p in self._timers.values() if p.timer.due_at <= moment]
            if not due:
                return fired
            first = min(due, key=lambda p: (p.timer.due_at, p.seq))
            first.handle.cancel()
            self._fire((first.timer.rule, first.timer.name), first.seq, notify=False)
            fired += 1

    def restore(self, timers: Iterable[Timer], conditions: Iterable[ConditionKey]) -> None:
        """Re-arm persisted timers and conditions; those of rules no longer configured go."""
        for timer in timers:
            if timer.rule in self.rules:
                self._arm(timer)
            else:
                log.info("dropping timer of a rule no longer configured", rule=timer.rule)
                self._changes.timers[(timer.rule, timer.name)] = None
        for key in conditions:
            if key[0] in self.rules:
                self._conditions.add(key)
            else:
                self._changes.conditions[key] = False

    def stamp(self, at: datetime) -> dict[str, Any]:
        """A moment for measuring short spans: wall time, and the monotonic clock when live.

        While timers are held (start-up catch-up: journaled events handled long after they
        arrived) the monotonic clock says nothing about the event, so only the wall time is kept.
        """
        mono = None if self._held else self.clock.monotonic()
        return {"at": iso(at), "mono": mono, "boot": self._boot}

    def seconds_between(self, earlier: Mapping[str, Any], later: Mapping[str, Any]) -> float:
        """Seconds from one stamp to another.

        Monotonic when both were taken live on this clock's timeline (this process, or an
        earlier one since the same boot), so a wall-clock step between them does not count;
        wall time otherwise.
        """
        if (
            earlier.get("mono") is not None
            and later.get("mono") is not None
            and earlier.get("boot") == later.get("boot") == self._boot
        ):
            return float(later["mono"]) - float(earlier["mono"])
        return (parse_iso(later["at"]) - parse_iso(earlier["at"])).total_seconds()

    def hold_timers(self) -> None:
        """Let no timer fire by the clock until :meth:`release_timers` (catch-up runs first).

        At start-up a restored timer may be overdue, while events journaled before the crash
        and not yet processed (a door closing in time) still have to be caught up with.
        """
        self._held = True

    def release_timers(self) -> None:
        """Let timers fire again; ones that fell due while held fire as soon as possible."""
        self._held = False
        deferred, self._deferred = self._deferred, set()
        for key in deferred:
            pending = self._timers.get(key)
            if pending is not None:
                pending.handle.cancel()
                self._arm(pending.timer)

    def take_changes(self) -> EngineChanges:
        """Hand over (and forget) what the rules asked for since the last call."""
        changes, self._changes = self._changes, EngineChanges()
        return changes

    # ----- internals -----

    def _passes_filters(self, subscription: Subscription, event: Event) -> bool:
        settings = subscription.rule.settings
        doors = self._doors_of(event)
        unmapped = event.door is None and event.door_ref is not None
        for door_filter, zone_filter, rule_level in (
            (settings.doors, settings.zones, True),
            (subscription.doors, subscription.zones, False),
        ):
            if door_filter is None and zone_filter is None:
                continue
            if not doors:
                if unmapped and rule_level and subscription.rule.catches_unmapped:
                    continue
                return False
            if not any(
                (door_filter is None or door in door_filter)
                and (zone_filter is None or self._zones.get(door) in zone_filter)
                for door in doors
            ):
                return False
        return True

    def _doors_of(self, event: Event) -> tuple[str, ...]:
        """The doors an event concerns; for device and camera events, the ones they serve."""
        if event.door is not None:
            return (event.door,)
        if event.door_ref is not None:
            return ()
        if event.kind.value.startswith(("device.", "camera.")):
            return self._doors_of_camera.get(
                event.camera or event.source, ()
            ) or self._doors_of_source.get(event.source, ())
        return ()

    def _run(
        self,
        context: RuleContext[Any],
        cause: Cause,
        handler: Callable[[Any], None],
        argument: Any,
    ) -> None:
        previous, context.cause = context.cause, cause
        try:
            handler(argument)
        except Exception as exc:  # One broken rule must not silence the others.
            self.handler_errors += 1
            log.exception(
                "rule handler failed",
                rule=context.rule_id,
                handler=getattr(handler, "__qualname__", repr(handler)),
                cause=cause.key,
                error=str(exc),
            )
        finally:
            context.cause = previous

    def _arm(self, timer: Timer) -> None:
        key = (timer.rule, timer.name)
        remaining = (timer.due_at - self.clock.now()).total_seconds()
        # Late input has part of its delay behind it already; a wall clock stepped back never
        # makes a timer longer than it was asked to be.
        remaining = min(max(remaining, 0.0), max(timer.duration, 0.0))
        seq = next(self._seq)
        handle = self.clock.call_at(
            self.clock.monotonic() + remaining, partial(self._fire, key, seq)
        )
        self._timers[key] = _Pending(timer, handle, seq)

    def _fire(self, key: TimerKey, seq: int, *, notify: bool = True) -> None:
        pending = self._timers.get(key)
        if pending is None or pending.seq != seq:
            return  # Cancelled or restarted since this callback was scheduled.
        if self._held and notify:
            self._deferred.add(key)
            return
        del self._timers[key]
        self._changes.timers[key] = None
        timer = pending.timer
        handler = self._timer_handler(timer.rule, timer.name)
        if handler is not None:
            cause = Cause(
                at=timer.due_at,
                key=f"timer:{timer.name}@{iso(timer.due_at)}",
                quiet=timer.quiet,
                timer=timer,
            )
            self._run(self.rules[timer.rule], cause, handler, timer)
        if notify and self.on_output is not None:
            self.on_output()

    def _timer_handler(self, rule: str, name: str) -> TimerHandler | None:
        for prefix, handler in self._timer_handlers.get(rule, ()):
            if name == prefix or name.startswith(prefix + ":"):
                return handler
        return None


def _filters_doors(context: RuleContext[Any]) -> bool:
    return context.settings.doors is not None or context.settings.zones is not None


def _filtered(subscription: Subscription) -> Callable[[Event], None]:
    """The handler, behind the subscription's own ``where`` test (which is rule code too)."""
    where = subscription.where
    if where is None:
        return subscription.handler

    def handle(event: Event) -> None:
        if where(event):
            subscription.handler(event)

    return handle
