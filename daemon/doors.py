"""Maps a source's own door references onto the site's door ids."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import structlog

from doorwatch.events import Event
from doorwatch.metrics import Metrics

log = structlog.get_logger(__name__)


class DoorResolver:
    """Resolves ``door_ref`` to a site door for one source (controller or camera)."""

    def __init__(
        self,
        source: str,
        mapping: Mapping[str, str],
        site_doors: Collection[str],
        metrics: Metrics | None = None,
    ) -> None:
        self.source = source
        self.mapping = dict(mapping)
        self.site_doors = frozenset(site_doors)
        self.metrics = metrics
        self._reported: set[str] = set()

    def resolve(self, event: Event) -> Event:
        """Return the event with ``door`` set to the site door, or None when unmapped.

        A reference that is itself a site door id needs no mapping entry. An unmapped
        reference is logged once; the event keeps ``door_ref`` so rules and the audit trail
        can still name it.
        """
        ref = event.door_ref or event.door
        if ref is None:
            return event if event.door is None else event.replace(door=None)
        door = self.mapping.get(ref)
        if door is None and ref in self.site_doors:
            door = ref
        if door is None:
            if self.metrics is not None:
                self.metrics.unmapped_doors.labels(self.source).inc()
            if ref not in self._reported:
                self._reported.add(ref)
                log.warning(
                    "door reference not mapped to a site door",
                    source=self.source,
                    door_ref=ref,
                    fix=f"add it under the {self.source!r} entry's doors: table",
                )
        if door == event.door and ref == event.door_ref:
            return event
        return event.replace(door=door, door_ref=ref)
