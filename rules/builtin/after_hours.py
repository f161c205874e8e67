"""``after_hours_access``: access granted (optionally: attempted) while a schedule is closed.

The schedule is judged by the local wall time of ``received_at`` in the site's time zone,
holidays and exceptions included (see :mod:`doorwatch.rules.schedules`). Each access is a
moment: the alert is momentary, one per door, and further accesses while it is open count as
occurrences.
"""

from __future__ import annotations

from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import AfterHoursAccessOptions, Severity
from doorwatch.rules.registry import register

# Usually a member of staff working late: worth a look by the SRO, not a lockdown. Sensitive
# doors (the SRO office, the server room) raise it in their own instance.
DEFAULT_SEVERITY = Severity.MEDIUM


@register(
    "after_hours_access",
    options=AfterHoursAccessOptions,
    severity=DEFAULT_SEVERITY,
    title="After-hours access: {door_name}",
)
def setup(rule: RuleContext[AfterHoursAccessOptions]) -> None:
    """Subscribe the after-hours handler."""
    options = rule.options
    schedule = rule.schedule(options.schedule)
    kinds = [EventKind.ACCESS_GRANTED, EventKind.ACCESS_DURESS]
    if options.include_denied:
        kinds.append(EventKind.ACCESS_DENIED)

    @rule.on(*kinds)
    def access(event: Event) -> None:
        status = schedule.status(event.received_at)
        if status.open:
            return
        rule.raise_alert(
            event=event,
            momentary=True,
            details={
                "granted": event.kind is not EventKind.ACCESS_DENIED,
                "holder": event.holder,
                "credential": event.credential,
                "schedule": schedule.name,
                "local_time": status.local.isoformat(timespec="seconds"),
                "closed_because": status.reason,
            },
        )
