"""``access_denied_burst``: ``count`` denials within ``window`` at one door or for one card.

The denials in the window are kept in a durable timer's data (due when the newest denial
leaves the window), so a burst that straddles a restart is still counted. Once a burst raises
its alert the count starts again: the next ``count`` denials are the next occurrence. Replayed
denials are not counted: a backlog delivered at start-up carries its delivery time, and would
look like a burst.
"""

from __future__ import annotations

from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import AccessDeniedBurstOptions, Severity
from doorwatch.rules.registry import register

# Someone trying card after card, or a cloned card being tried: worth a guard's attention.
DEFAULT_SEVERITY = Severity.MEDIUM


@register(
    "access_denied_burst",
    options=AccessDeniedBurstOptions,
    severity=DEFAULT_SEVERITY,
    title="Repeated denied access: {door_name}",
)
def setup(rule: RuleContext[AccessDeniedBurstOptions]) -> None:
    """Subscribe the denial counter."""
    options = rule.options

    @rule.on(EventKind.ACCESS_DENIED)
    def denied(event: Event) -> None:
        if options.per == "credential":
            if event.credential is None:
                return  # Nothing to count by.
            subject = f"credential:{event.credential}"
        else:
            subject = rule.subject(event=event)
        name = f"window:{subject}"
        pending = rule.timer(name)
        now = rule.stamp()
        # Stamps measure the window on the monotonic clock while live, so a wall-clock step
        # inside a burst neither splits nor stretches it. (Plain ISO strings: older data.)
        times = [
            t if isinstance(t, dict) else {"at": t, "mono": None}
            for t in (pending.data["times"] if pending is not None else [])
        ]
        times = [t for t in times if rule.seconds_between(t, now) < options.window]
        times.append(now)
        if len(times) < options.count:
            rule.start_timer(name, options.window, data={"times": times})
            return
        rule.cancel_timer(name)
        rule.raise_alert(
            event=event,
            subject=subject,
            momentary=True,
            details={
                "denials": len(times),
                "window_s": options.window,
                "per": options.per,
                "first_at": times[0]["at"],
            },
        )
