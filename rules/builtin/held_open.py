"""``door_held_open``: a door stays open past its threshold, with an optional pre-alarm.

Timing starts at the ``door.opened`` event and uses the door's ``held_open_after`` /
``prealarm_after``, falling back to the rule's own. The pre-alarm raises a lower-severity
alert; the alarm then *escalates that same alert* (one alert per propped-open episode, so a
guard sees one item whose severity rises, not two). Without a pre-alarm, or if someone has
already closed the warning, the alarm raises a new alert. The alert resolves when the door
closes, replayed closes included. A controller's native ``door.held_warning`` and
``door.held_open`` (uhppoted 37, ONVIF DoorOpenTooLong, esp-rfid) take the place of the
timers, for mapped and unmapped doors alike.
"""

from __future__ import annotations

from doorwatch.rules.api import DoorAlarm, DoorPosition, Event, EventKind, RuleContext, Timer
from doorwatch.rules.config import DoorHeldOpenOptions, Severity
from doorwatch.rules.registry import register

# A propped door is an open perimeter until someone walks over; it is urgent, though less
# than a door that was forced.
DEFAULT_SEVERITY = Severity.HIGH


class _HeldOpen:
    """The handlers of one ``door_held_open`` instance."""

    def __init__(self, rule: RuleContext[DoorHeldOpenOptions]) -> None:
        self.rule = rule
        self.options = rule.options

    def thresholds(self, door: str | None) -> tuple[float, float | None]:
        """The door's alarm and pre-alarm delays, falling back to the rule's."""
        config = self.rule.config.door(door) if door is not None else None
        held = (config.held_open_after if config else None) or self.options.held_open_after
        prealarm = (config.prealarm_after if config else None) or self.options.prealarm_after
        if prealarm is not None and prealarm >= held:
            # A door with a short threshold of its own and the rule's longer default pre-alarm:
            # a warning after the alarm would be noise.
            prealarm = None
        return held, prealarm

    def opened(self, event: Event) -> None:
        """Start timing an opening."""
        subject = self.rule.subject(event=event)
        if self.rule.timer(f"held:{subject}") is not None:
            return  # Already timing this opening; a repeated "opened" does not restart it.
        held, prealarm = self.thresholds(event.door)
        if prealarm is not None:
            self.rule.start_timer(f"pre:{subject}", prealarm)
        self.rule.start_timer(f"held:{subject}", held)

    def closed(self, event: Event) -> None:
        """Stop timing and resolve (replayed closes too: the door is closed now)."""
        subject = self.rule.subject(event=event)
        self.rule.cancel_timer(f"pre:{subject}")
        self.rule.cancel_timer(f"held:{subject}")
        self.rule.resolve_alert(event=event, reason="door closed")

    def native_warning(self, event: Event) -> None:
        """The controller's own pre-alarm replaces ours."""
        self.rule.cancel_timer(f"pre:{self.rule.subject(event=event)}")
        self.prealarm(event, {"native": True})

    def native_alarm(self, event: Event) -> None:
        """The controller's own held-open alarm replaces our timers."""
        subject = self.rule.subject(event=event)
        self.rule.cancel_timer(f"pre:{subject}")
        self.rule.cancel_timer(f"held:{subject}")
        self.alarm(event, {"native": True})

    def prealarm_due(self, timer: Timer) -> None:
        """The pre-alarm delay has passed."""
        self.prealarm(timer.event, {"open_for_s": timer.duration})

    def alarm_due(self, timer: Timer) -> None:
        """The held-open delay has passed."""
        self.alarm(timer.event, {"open_for_s": timer.duration})

    def prealarm(self, event: Event | None, details: dict[str, object]) -> None:
        """Raise the warning, unless this opening is already alerting."""
        rule = self.rule
        if rule.has_alert(rule.subject(event=event)):
            return
        if event is not None and event.door is not None:
            self.mark(event.door, DoorAlarm.HELD_WARNING)
        rule.raise_alert(
            event=event,
            severity=self.options.prealarm_severity,
            title=rule.title_template + " (pre-alarm)",
            details={"stage": "pre-alarm", **details},
        )

    def alarm(self, event: Event | None, details: dict[str, object]) -> None:
        """Escalate the warning to the alarm, or raise the alarm if there is no warning."""
        if event is not None and event.door is not None:
            self.mark(event.door, DoorAlarm.HELD)
        self.rule.update_alert(
            event=event, details={"stage": "alarm", **details}, raise_if_missing=True
        )

    def mark(self, door: str, alarm: DoorAlarm) -> None:
        """Show the alarm on the door board while the door is still open.

        During catch-up after a restart the state may already show the door closed, and an
        alarm on a closed door would stick on the board.
        """
        if self.rule.door(door).position is DoorPosition.OPEN:
            self.rule.set_door_alarm(door, alarm, active=True)


@register(
    "door_held_open",
    options=DoorHeldOpenOptions,
    severity=DEFAULT_SEVERITY,
    title="Door held open: {door_name}",
    catches_unmapped=True,
)
def setup(rule: RuleContext[DoorHeldOpenOptions]) -> None:
    """Subscribe the held-open handlers."""
    held = _HeldOpen(rule)
    rule.subscribe(held.opened, EventKind.DOOR_OPENED)
    rule.subscribe(held.closed, EventKind.DOOR_CLOSED, include_replayed=True)
    rule.subscribe(held.native_warning, EventKind.DOOR_HELD_WARNING)
    rule.subscribe(held.native_alarm, EventKind.DOOR_HELD_OPEN)
    rule.on_timer("pre")(held.prealarm_due)
    rule.on_timer("held")(held.alarm_due)
