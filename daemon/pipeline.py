"""Where events go: the journal first, then state, rules and whoever else listens.

Every adapter hands its events to :meth:`Pipeline.submit`. Batches are serialised, so the
journal's order is the order in which state and rules see events, whichever adapter they
came from.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import structlog

from doorwatch.errors import StorageError
from doorwatch.events import Event
from doorwatch.journal import DeadLetter, Journal, JournaledEvent
from doorwatch.metrics import Metrics
from doorwatch.state import StateStore

log = structlog.get_logger(__name__)

EventConsumer = Callable[[Sequence[JournaledEvent]], Awaitable[None]]

# A failing disk is retried quickly at first, then every 30 s; meanwhile nothing is acked,
# so the broker keeps the messages and nothing is lost.
_RETRY_BASE = 0.25
_RETRY_MAX = 30.0


class Pipeline:
    """Journals batches durably and dispatches the new events in journal order."""

    def __init__(self, journal: Journal, state: StateStore, metrics: Metrics) -> None:
        self.journal = journal
        self.state = state
        self.metrics = metrics
        self.consumers: list[EventConsumer] = []
        self._lock = asyncio.Lock()
        self.storage_ok = True
        self.last_storage_error: str | None = None

    def add_consumer(self, consumer: EventConsumer) -> None:
        """Be called with each batch of newly journaled events, in journal order."""
        self.consumers.append(consumer)

    async def submit(
        self,
        events: Sequence[Event],
        dead_letters: Sequence[DeadLetter] = (),
        *,
        after_commit: Callable[[], None] | None = None,
    ) -> list[JournaledEvent]:
        """Store a batch (retrying until the disk takes it), then dispatch what is new.

        ``after_commit`` runs right after the commit and before dispatch: MQTT acks go there,
        so the broker's in-flight window is released as early as durability allows.
        """
        async with self._lock:
            new = await self._commit(events, dead_letters)
            if after_commit is not None:
                after_commit()
            self._count(events, new)
            self.state.apply_batch(item.event for item in new)
            for consumer in self.consumers:
                await consumer(new)
            return new

    def _count(self, events: Sequence[Event], new: Sequence[JournaledEvent]) -> None:
        # One labelled increment per (source, kind) and batch, not one per event: the label
        # lookup costs more than the rest of an event's bookkeeping here.
        counts = Counter((item.event.source, item.event.kind.value) for item in new)
        for (source, kind), n in counts.items():
            self.metrics.events_in.labels(source, kind).inc(n)
        if len(new) < len(events):
            fresh = {id(item.event) for item in new}
            duplicates = Counter(e.source for e in events if id(e) not in fresh)
            for source, n in duplicates.items():
                self.metrics.duplicates.labels(source).inc(n)

    async def _commit(
        self, events: Sequence[Event], dead_letters: Sequence[DeadLetter]
    ) -> list[JournaledEvent]:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                new = await self.journal.append(events, dead_letters)
            except StorageError as exc:
                self.metrics.storage_errors.inc()
                self.storage_ok = False
                self.last_storage_error = str(exc)
                delay = min(_RETRY_MAX, _RETRY_BASE * 2**attempt)
                attempt += 1
                log.error(  # noqa: TRY400 - the reason is in the message; no traceback wanted.
                    "journal write failed; holding acknowledgements and retrying",
                    error=str(exc),
                    retry_in_s=delay,
                    attempt=attempt,
                )
                await asyncio.sleep(delay)
                continue
            self.metrics.journal_commit.observe(time.perf_counter() - started)
            self.metrics.journal_batch.observe(len(events) + len(dead_letters))
            if not self.storage_ok:
                log.info("journal writes recovered", attempts=attempt)
            self.storage_ok = True
            self.last_storage_error = None
            return new
