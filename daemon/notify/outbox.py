"""The durable outbox: deliveries are committed with their alert, then sent with retries.

A delivery row is written in the same transaction as the alert transition it announces, so
a crash can delay a notification but never lose it. The worker sends due rows, marks them
sent, and retries failures with capped, jittered exponential backoff until ``give_up_after``;
then the row is marked dead, counted and logged, and shown on the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from doorwatch.metrics import Metrics
from doorwatch.notify.base import Delivery, DeliveryError, Notifier
from doorwatch.storage import Database, Migration

log = structlog.get_logger(__name__)

MIGRATIONS = [
    Migration(
        "outbox-1",
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL,
            target TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            payload BLOB NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            created_at REAL NOT NULL,
            sent_at REAL,
            last_error TEXT
        );
        CREATE INDEX outbox_due ON outbox(state, next_at);
        CREATE INDEX outbox_alert ON outbox(alert_id)
        """,
    )
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed deliveries are retried."""

    # The first retry comes within a couple of seconds: most failures are a receiver blip.
    base: float = 2.0
    # Never wait more than five minutes between tries: a guard's phone must not lag an hour
    # behind once the push service is back.
    cap: float = 300.0
    give_up_after: float = 24 * 3600.0

    def delay(self, attempts: int, hint: float | None = None) -> float:
        """Full-jitter backoff after ``attempts`` failures, or the receiver's own hint."""
        if hint is not None:
            return min(self.cap, hint)
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempts, 30)))  # noqa: S311


def enqueue(
    conn: sqlite3.Connection,
    alert_id: str,
    transition: int,
    payload: Mapping[str, Any],
    targets: Iterable[str],
) -> list[Delivery]:
    """Add one delivery per target; call inside the alert's own transaction.

    The idempotency key is ``<alert id>:<transition>:<target>``; enqueuing the same transition
    twice (a replay after a crash) adds nothing. Returns the deliveries added, for
    :meth:`Outbox.hand_over` once the transaction has committed.
    """
    now = time.time()
    body = orjson.dumps(payload)
    added: list[Delivery] = []
    for target in targets:
        key = f"{alert_id}:{transition}:{target}"
        cursor = conn.execute(
            "INSERT OR IGNORE INTO outbox(alert_id, target, idempotency_key, payload, state,"
            " next_at, created_at) VALUES (?,?,?,?,'pending',?,?)",
            (alert_id, target, key, body, now, now),
        )
        if cursor.rowcount == 1 and cursor.lastrowid is not None:
            # A copy of the payload, as the worker would read it back from the row.
            added.append(Delivery(cursor.lastrowid, alert_id, target, key, orjson.loads(body), 0))
    return added


# Far more deliveries than can be committed between two reads of the table.
_STARTED_REMEMBERED = 10_000


class Outbox:
    """Sends pending deliveries through their notifiers; one worker task per daemon."""

    def __init__(
        self,
        db: Database,
        notifiers: Mapping[str, Notifier],
        metrics: Metrics,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
        snapshot: Callable[[str], Awaitable[bytes | None]] | None = None,
    ) -> None:
        self.db = db
        self.notifiers = dict(notifiers)
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        # Where an alert's snapshot comes from when a delivery attaches it; may wait briefly
        # for a capture still in flight.
        self.snapshot_source = snapshot
        self._in_flight: set[int] = set()
        # Deliveries committed a moment ago, handed over in memory so the first attempt does
        # not wait for a read behind the next journal batch on the database thread.
        self._handed: list[Delivery] = []
        # Ids this process has already started; a handed delivery the worker has meanwhile
        # read from the table (and perhaps finished) is not sent twice. Bounded, oldest out.
        self._started: dict[int, None] = {}

    async def setup(self) -> None:
        """Create the table on first use."""
        await self.db.migrate(MIGRATIONS)

    def wake(self) -> None:
        """Tell the worker new rows are due (called after the alert transaction commits)."""
        self._wake.set()

    def hand_over(self, deliveries: Iterable[Delivery]) -> None:
        """Give the worker deliveries just committed (by :func:`enqueue`) and wake it.

        Only an optimisation: the rows are in the table, so a delivery handed over to a worker
        that never runs it is still sent, by the next read of due rows or after a restart.
        """
        self._handed.extend(deliveries)
        self._wake.set()

    async def run(self) -> None:
        """Send due deliveries until cancelled; each row is sent by at most one task at a time."""
        await self._resume()
        async with asyncio.TaskGroup() as group:
            while True:
                handed, self._handed = self._handed, []
                self._start(group, (d for d in handed if d.id not in self._started))
                due, next_at = await self._due()
                self._start(group, due)
                self._wake.clear()
                if self._handed:
                    continue
                wait = 1.0 if next_at is None else max(0.05, min(5.0, next_at - time.time()))
                # Wake early when a new alert commits; otherwise poll for due retries.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    def _start(self, group: asyncio.TaskGroup, deliveries: Iterable[Delivery]) -> None:
        for row in deliveries:
            if row.id in self._in_flight:
                continue
            self._in_flight.add(row.id)
            self._started[row.id] = None
            if len(self._started) > _STARTED_REMEMBERED:
                del self._started[next(iter(self._started))]
            group.create_task(self._deliver(row), name=f"outbox.{row.target}.{row.id}")

    async def _resume(self) -> None:
        """After a (re)start, try every pending delivery now rather than at its backoff time.

        A restart is often the fix (the network came back, a receiver was reconfigured), and a
        guard should not wait out a five-minute backoff chosen by the previous process.
        """
        now = time.time()
        resumed = await self.db.transaction(
            lambda conn: (
                conn.execute(
                    "UPDATE outbox SET next_at = ? WHERE state = 'pending' AND next_at > ?",
                    (now, now),
                ).rowcount
            )
        )
        pending = await self.db.call(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
            ).fetchone()[0]
        )
        if pending:
            log.info("resuming pending alert deliveries", pending=pending, rescheduled=resumed)

    async def _due(self) -> tuple[list[Delivery], float | None]:
        now = time.time()
        in_flight = tuple(self._in_flight)

        def read(conn: sqlite3.Connection) -> tuple[list[Delivery], float | None]:
            rows = conn.execute(
                "SELECT id, alert_id, target, idempotency_key, payload, attempts FROM outbox"
                " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT 100",
                (now,),
            ).fetchall()
            upcoming = conn.execute(
                "SELECT MIN(next_at) FROM outbox WHERE state = 'pending' AND next_at > ?", (now,)
            ).fetchone()[0]
            deliveries = [
                Delivery(r[0], r[1], r[2], r[3], orjson.loads(r[4]), r[5])
                for r in rows
                if r[0] not in in_flight
            ]
            return deliveries, upcoming

        return await self.db.call(read)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            async with self._slots:
                await self._attempt(delivery)
        finally:
            self._in_flight.discard(delivery.id)

    async def _attempt(self, delivery: Delivery) -> None:
        notifier = self.notifiers.get(delivery.target)
        if notifier is None:
            # The target was removed from the config since this row was written.
            await self._finish(delivery, "dead", "target no longer configured")
            return
        if self.snapshot_source is not None and delivery.snapshot is None:
            snapshot = await self.snapshot_source(delivery.alert_id)
            delivery = Delivery(
                delivery.id,
                delivery.alert_id,
                delivery.target,
                delivery.idempotency_key,
                delivery.payload,
                delivery.attempts,
                snapshot,
            )
        try:
            await notifier.send(delivery)
        except DeliveryError as exc:
            await self._failed(delivery, str(exc), exc.retry_after)
            return
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not stop the outbox.
            await self._failed(delivery, f"{exc.__class__.__name__}: {exc}"[:200], None)
            return
        self.metrics.deliveries.labels(notifier.kind, "sent").inc()
        await self._finish(delivery, "sent", None)
        log.info(
            "alert delivered",
            target=delivery.target,
            alert_id=delivery.alert_id,
            attempts=delivery.attempts + 1,
        )

    async def _failed(self, delivery: Delivery, error: str, hint: float | None) -> None:
        kind = self.notifiers[delivery.target].kind
        attempts = delivery.attempts + 1
        created = await self.db.call(
            lambda c: c.execute(
                "SELECT created_at FROM outbox WHERE id = ?", (delivery.id,)
            ).fetchone()[0]
        )
        if time.time() - created >= self.policy.give_up_after:
            self.metrics.deliveries.labels(kind, "dead").inc()
            await self._finish(delivery, "dead", error, attempts=attempts)
            log.error(
                "alert delivery given up",
                target=delivery.target,
                alert_id=delivery.alert_id,
                attempts=attempts,
                error=error,
            )
            return
        self.metrics.deliveries.labels(kind, "retry").inc()
        delay = self.policy.delay(attempts, hint)
        await self.db.call(
            lambda c: c.execute(
                "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                (attempts, time.time() + delay, error, delivery.id),
            )
        )
        self._wake.set()  # The worker's next wake-up must account for this retry time.
        log.warning(
            "alert delivery failed; will retry",
            target=delivery.target,
            alert_id=delivery.alert_id,
            attempts=attempts,
            retry_in_s=round(delay, 1),
            error=error,
        )

    async def _finish(
        self, delivery: Delivery, state: str, error: str | None, *, attempts: int | None = None
    ) -> None:
        done = attempts if attempts is not None else delivery.attempts + 1
        await self.db.call(
            lambda c: c.execute(
                "UPDATE outbox SET state = ?, attempts = ?, last_error = ?, sent_at = ?"
                " WHERE id = ?",
                (state, done, error, time.time() if state == "sent" else None, delivery.id),
            )
        )
        if state == "dead":
            dead = await self.db.call(
                lambda c: c.execute("SELECT COUNT(*) FROM outbox WHERE state = 'dead'").fetchone()[
                    0
                ]
            )
            self.metrics.deliveries_dead.set(dead)

    async def counts(self) -> dict[str, int]:
        """Deliveries by state (for health and the console)."""
        rows = await self.db.call(
            lambda c: c.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        )
        return dict(rows)

    async def for_alert(self, alert_id: str) -> list[dict[str, Any]]:
        """Every delivery of one alert, for the incident view."""
        rows = await self.db.call(
            lambda c: c.execute(
                "SELECT target, idempotency_key, state, attempts, created_at, sent_at, last_error"
                " FROM outbox WHERE alert_id = ? ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        return [
            {
                "target": r[0],
                "idempotency_key": r[1],
                "state": r[2],
                "attempts": r[3],
                "created_at": r[4],
                "sent_at": r[5],
                "last_error": r[6],
            }
            for r in rows
        ]

    async def prune(self, *, older_than: float) -> int:
        """Delete finished deliveries created before ``older_than`` (epoch seconds)."""
        return await self.db.call(
            lambda c: (
                c.execute(
                    "DELETE FROM outbox WHERE state != 'pending' AND created_at < ?", (older_than,)
                ).rowcount
            )
        )
