"""Tailgating: a door that opens twice on one badge.

One grant lets one person through. If the door opens, closes and opens again while the grant
is still fresh, a second person has probably followed without badging. Load it with::

    rules:
      - module: rules.d/tailgating.py      # relative to the config file
        options: {window: 20s}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from doorwatch.rules.api import Duration, Event, EventKind, RuleContext

# Defaults for the alert; an instance's `severity:` and `title:` override them.
SEVERITY = "high"
TITLE = "Tailgating suspected: {door_name}"


class Options(BaseModel):
    """What goes under the rule's ``options:``; checked by ``doorwatch check``."""

    model_config = ConfigDict(extra="forbid")

    # Long enough for one person to badge, open, walk through and let the door close.
    window: Duration = 15.0
    openings: int = Field(default=2, ge=2, description="Openings on one grant that alert.")


def setup(rule: RuleContext[Options]) -> None:
    """Count the openings that follow each grant."""

    @rule.on(EventKind.ACCESS_GRANTED)
    def granted(event: Event) -> None:
        if event.door is None:
            return
        # A new grant starts a new count; the timer's data is its memory, and it survives a
        # restart. When the window runs out the timer just expires: no handler needed.
        rule.start_timer(
            f"grant:{event.door}",
            rule.options.window,
            data={"holder": event.holder, "openings": 0},
        )

    @rule.on(EventKind.DOOR_OPENED)
    def opened(event: Event) -> None:
        grant = rule.timer(f"grant:{event.door}")
        if grant is None:
            return  # No fresh grant: forced-open is another rule's business.
        openings = int(grant.data["openings"]) + 1
        rule.update_timer(grant.name, {**grant.data, "openings": openings})
        if openings == rule.options.openings:
            rule.raise_alert(
                event=event,
                momentary=True,
                details={"holder": grant.data["holder"], "openings": openings},
            )
