"""The rules on a virtual clock with alerts in memory: what replay and the harness drive.

Events are fed in order. Before each one the clock moves on to its ``received_at``, firing the
timers that fall due on the way, each at its own time; then door state takes the event, then
the rules. Nothing touches a database or the real time.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from doorwatch.alerts.model import AlertBook, AlertTransition
from doorwatch.config.models import Config
from doorwatch.events import Event
from doorwatch.rules.clock import VirtualClock
from doorwatch.rules.engine import RulesEngine
from doorwatch.state import StateStore

# Like the journal, an offline run drops an event whose dedupe key it has seen.
_SEEN_KEYS = 100_000


class OfflineRules:
    """A site's rules, a virtual clock, door state and an :class:`AlertBook`."""

    def __init__(self, config: Config, *, start: datetime) -> None:
        """Set up the configured rules; raises RuleLoadError when one cannot be."""
        self.config = config
        self.clock = VirtualClock(start)
        self.state = StateStore(d.id for d in config.doors)
        self.engine = RulesEngine(config, self.state, self.clock)
        self.book = AlertBook(site=config.site.name)
        self.transitions: list[AlertTransition] = []
        self._seen: OrderedDict[str, None] = OrderedDict()

    def feed(self, event: Event) -> list[AlertTransition]:
        """Run the clock up to the event, then the event; return the transitions made."""
        self.clock.advance_to(event.received_at)
        if event.dedupe_key not in self._seen:
            self._seen[event.dedupe_key] = None
            if len(self._seen) > _SEEN_KEYS:
                self._seen.popitem(last=False)
            self.state.apply(event)
            self.engine.process(event)
        return self._drain()

    def advance(self, seconds: float) -> list[AlertTransition]:
        """Let time pass; return the transitions of the timers that fired."""
        self.clock.advance(seconds)
        return self._drain()

    def set_wall(self, moment: datetime) -> list[AlertTransition]:
        """Set the wall clock (forwards lets time pass; backwards only re-labels it)."""
        self.clock.set_wall(moment)
        return self._drain()

    def acknowledge(
        self, alert_id: str, *, by: str, note: str | None = None
    ) -> list[AlertTransition]:
        """A person acknowledges an alert now."""
        made = self.book.acknowledge(alert_id, by=by, at=self.clock.now(), note=note)
        self.transitions.extend(made)
        return made

    def _drain(self) -> list[AlertTransition]:
        made: list[AlertTransition] = []
        for command in self.engine.take_changes().commands:
            made.extend(self.book.apply(command))
        self.transitions.extend(made)
        return made
