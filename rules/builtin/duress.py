"""``duress``: a duress code or duress card was used (``access.duress``)."""

from __future__ import annotations

from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import DuressOptions, Severity
from doorwatch.rules.registry import register

# A person is being forced to open a door: a silent call for help.
DEFAULT_SEVERITY = Severity.CRITICAL


@register(
    "duress",
    options=DuressOptions,
    severity=DEFAULT_SEVERITY,
    title="Duress code used: {door_name}",
)
def setup(rule: RuleContext[DuressOptions]) -> None:
    """Subscribe the duress handler."""

    @rule.on(EventKind.ACCESS_DURESS)
    def duress(event: Event) -> None:
        rule.raise_alert(
            event=event,
            momentary=True,
            details={"holder": event.holder, "credential": event.credential},
        )
