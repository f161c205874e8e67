"""The rules engine inside the daemon: durable timers, the journal cursor, alert delivery.

Per batch of journaled events (or after timers fire) the service takes the engine's changes
and writes, in **one** transaction: the timers started and stopped, the lasting alert
conditions, the alert commands (into ``rule_outbox``) and the ``rules`` journal cursor. Only
then are the commands delivered to the :class:`~doorwatch.alerts.model.AlertSink` and removed
from the outbox. So after a crash:

* events journaled after the cursor are processed again at start-up (no event escapes);
* pending timers are re-armed from their stored wall-clock due times, so a door propped open
  before a restart still alarms on time after it;
* commands written but not yet delivered are delivered; ones delivered but not yet removed
  are sent again, and the sink ignores them by their ``trigger``.

A batch that changes nothing only moves the cursor, and that write is coalesced to once a
second: re-processing such events after a crash changes nothing either.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
import structlog

from doorwatch.alerts.model import (
    AlertBook,
    AlertCommand,
    AlertSink,
    AlertTransition,
    command_from_json,
    command_to_json,
    deliver,
)
from doorwatch.alerts.service import route_audiences
from doorwatch.alerts.sink import StoreSink
from doorwatch.alerts.store import AlertChange
from doorwatch.errors import ConfigError, StorageError
from doorwatch.events import Event
from doorwatch.journal import Journal, JournaledEvent, set_cursor
from doorwatch.rules.api import Timer
from doorwatch.rules.clock import Clock, RealClock
from doorwatch.rules.config import Severity
from doorwatch.rules.engine import EngineChanges, RulesEngine
from doorwatch.rules.loader import RuleLoadError
from doorwatch.storage import Database, Migration

if TYPE_CHECKING:
    from doorwatch.app import Daemon

log = structlog.get_logger(__name__)

CURSOR = "rules"

MIGRATIONS = [
    Migration(
        "rules-1",
        """
        CREATE TABLE rule_timers (
            rule TEXT NOT NULL,
            name TEXT NOT NULL,
            due_ts REAL NOT NULL,
            armed_ts REAL NOT NULL,
            quiet INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL DEFAULT '{}',
            event TEXT,
            PRIMARY KEY (rule, name)
        );
        CREATE TABLE rule_conditions (
            rule TEXT NOT NULL,
            subject TEXT NOT NULL,
            PRIMARY KEY (rule, subject)
        );
        CREATE TABLE rule_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            body TEXT NOT NULL
        )
        """,
    )
]

# Catch-up reads the journal in pages of this many events, one transaction each.
_CATCH_UP_PAGE = 1000
# A cursor move with nothing else to write waits at most this long: cheap to redo on a crash.
_CURSOR_LINGER = 1.0
# After a failed write or delivery, try again this often; the journal is on the same disk.
_RETRY_EVERY = 1.0

TransitionListener = Callable[[AlertTransition], None]


def log_transition(transition: AlertTransition) -> None:
    """Log an alert transition (no credentials: the alert holds only masked ones)."""
    alert = transition.alert
    log.info(
        "alert transition",
        action=transition.action.value,
        alert_id=alert.id,
        rule=alert.rule,
        severity=alert.severity.value,
        door=alert.door,
        camera=alert.camera,
        occurrences=alert.occurrences,
    )


class RulesService:
    """Feeds the engine from the pipeline and keeps its work durable."""

    def __init__(
        self,
        engine: RulesEngine,
        db: Database,
        journal: Journal,
        *,
        sink: AlertSink,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.db = db
        self.journal = journal
        self.sink = sink
        self.clock = clock
        self.listeners: list[TransitionListener] = [log_transition]
        self.cursor = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._unwritten = EngineChanges()
        self._cursor_pending: int | None = None
        self._cursor_written_at = float("-inf")
        self._outbox_pending = True
        self._failing = False
        engine.on_output = self._wake.set

    # ----- start-up -----

    async def start(self) -> None:
        """Create tables, re-arm timers, deliver leftovers, and catch up with the journal."""
        await self.db.migrate(MIGRATIONS)
        cursor, created = await self.db.transaction(_initial_cursor)
        if created and cursor:
            log.info("rules start at the end of the existing journal", seq=cursor)
        self.cursor = cursor
        timers, conditions = await self.db.call(_load_state)
        self.engine.hold_timers()
        self.engine.restore(timers, conditions)
        if timers:
            log.info("rule timers re-armed", count=len(timers))
        await self._deliver()
        caught_up = 0
        while True:
            page = await self.journal.after(self.cursor, limit=_CATCH_UP_PAGE)
            if not page:
                break
            for item in page:
                # Timers that fell due before this event fire first, as they would have live.
                self.engine.fire_due_by(item.event.received_at)
                self.engine.process(item.event)
            caught_up += len(page)
            await self._flush(page[-1].seq, force_cursor=True)
        self.engine.fire_due_by(self.clock.now())
        self.engine.release_timers()
        await self._flush(None, force_cursor=True)
        if caught_up:
            log.info("rules caught up with the journal", events=caught_up, seq=self.cursor)

    # ----- running -----

    async def consume(self, batch: Sequence[JournaledEvent]) -> None:
        """Pipeline consumer: run the rules over newly journaled events."""
        if not batch:
            return
        for item in batch:
            self.engine.process(item.event)
        await self._flush(batch[-1].seq)

    async def run(self) -> None:
        """Write and deliver what timers produce; retry failed writes; until cancelled."""
        while True:
            linger = self._cursor_pending is not None or bool(self._unwritten) or self._failing
            try:
                if linger:
                    await asyncio.wait_for(self._wake.wait(), _RETRY_EVERY)
                else:
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write and deliver whatever is pending now (what :meth:`run` does when woken)."""
        await self._flush(None, force_cursor=True)

    # ----- internals -----

    async def _flush(self, cursor: int | None, *, force_cursor: bool = False) -> None:
        async with self._lock:
            self._unwritten.merge(self.engine.take_changes())
            if cursor is not None:
                self._cursor_pending = max(cursor, self._cursor_pending or 0)
            lingered = self.clock.monotonic() - self._cursor_written_at
            cursor_due = self._cursor_pending is not None and (
                force_cursor or lingered >= _CURSOR_LINGER
            )
            if self._unwritten or cursor_due:
                # The cursor goes with any other change: the events it covers caused them.
                changes, seq = self._unwritten, self._cursor_pending
                # Alerts go into the store in this same transaction (one disk flush for the
                # rules and the alert), unless earlier commands still wait in the outbox:
                # commands must reach the store in order.
                sink = (
                    self.sink
                    if isinstance(self.sink, StoreSink) and not self._outbox_pending
                    else None
                )
                try:
                    applied, deferred = await self.db.transaction(
                        lambda conn: _write(conn, changes, seq, sink)
                    )
                except StorageError as exc:
                    # Kept in memory and retried by run(); meanwhile the journal, on the same
                    # disk, holds back acknowledgements, so nothing is lost.
                    self._failing = True
                    log.error("rules state write failed; retrying", error=str(exc))  # noqa: TRY400
                    self._wake.set()
                    return
                self._unwritten = EngineChanges()
                if deferred:
                    self._outbox_pending = True
                if seq is not None:
                    self.cursor = seq
                    self._cursor_pending = None
                    self._cursor_written_at = self.clock.monotonic()
                self._announce(applied)
            await self._deliver()

    def _announce(self, applied: Sequence[tuple[AlertCommand, AlertChange | None]]) -> None:
        if not applied:
            return
        assert isinstance(self.sink, StoreSink)
        for command, change in applied:
            for transition in self.sink.committed(command, change):
                for listener in self.listeners:
                    listener(transition)

    async def _deliver(self) -> None:
        if not self._outbox_pending:
            self._failing = False
            return
        rows = await self.db.call(
            lambda c: c.execute("SELECT id, body FROM rule_outbox ORDER BY id").fetchall()
        )
        delivered: int | None = None
        failed = False
        for row_id, body in rows:
            command = command_from_json(orjson.loads(body))
            try:
                transitions = await deliver(self.sink, command)
            except Exception as exc:  # noqa: BLE001 - kept in the outbox and retried.
                log.error("alert delivery failed; retrying", error=str(exc), rule=command.rule)  # noqa: TRY400
                failed = True
                break
            delivered = row_id
            for transition in transitions:
                for listener in self.listeners:
                    listener(transition)
        if delivered is not None:
            done = delivered
            await self.db.transaction(
                lambda c: c.execute("DELETE FROM rule_outbox WHERE id <= ?", (done,))
            )
        self._outbox_pending = failed
        self._failing = failed
        if failed:
            self._wake.set()


def _initial_cursor(conn: sqlite3.Connection) -> tuple[int, bool]:
    """The rules cursor; on first use, the journal's end (old events are history, not news)."""
    row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (CURSOR,)).fetchone()
    if row is not None:
        return int(row[0]), False
    top = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    set_cursor(conn, CURSOR, top)
    return top, True


def _load_state(conn: sqlite3.Connection) -> tuple[list[Timer], list[tuple[str, str]]]:
    timers = [
        Timer(
            rule=row[0],
            name=row[1],
            due_at=datetime.fromtimestamp(row[2], UTC),
            armed_at=datetime.fromtimestamp(row[3], UTC),
            quiet=bool(row[4]),
            data=orjson.loads(row[5]),
            event=Event.from_json(orjson.loads(row[6])) if row[6] else None,
        )
        for row in conn.execute(
            "SELECT rule, name, due_ts, armed_ts, quiet, data, event FROM rule_timers"
        )
    ]
    conditions = [(r[0], r[1]) for r in conn.execute("SELECT rule, subject FROM rule_conditions")]
    return timers, conditions


def _write(
    conn: sqlite3.Connection,
    changes: EngineChanges,
    cursor: int | None,
    sink: StoreSink | None,
) -> tuple[list[tuple[AlertCommand, AlertChange | None]], bool]:
    """Write the engine's changes; apply its alert commands through ``sink`` when given.

    Returns the commands applied (with their changes, to announce after the commit) and
    whether any went to the outbox instead.
    """
    for (rule, name), timer in changes.timers.items():
        if timer is None:
            conn.execute("DELETE FROM rule_timers WHERE rule = ? AND name = ?", (rule, name))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO rule_timers(rule, name, due_ts, armed_ts, quiet, data,"
                " event) VALUES (?,?,?,?,?,?,?)",
                (
                    rule,
                    name,
                    timer.due_at.timestamp(),
                    timer.armed_at.timestamp(),
                    int(timer.quiet),
                    orjson.dumps(dict(timer.data)).decode(),
                    orjson.dumps(timer.event.to_json()).decode() if timer.event else None,
                ),
            )
    for (rule, subject), is_open in changes.conditions.items():
        if is_open:
            conn.execute(
                "INSERT OR IGNORE INTO rule_conditions(rule, subject) VALUES (?, ?)",
                (rule, subject),
            )
        else:
            conn.execute(
                "DELETE FROM rule_conditions WHERE rule = ? AND subject = ?", (rule, subject)
            )
    applied, queued = _apply_commands(conn, changes.commands, sink)
    if queued:
        conn.executemany(
            "INSERT INTO rule_outbox(body) VALUES (?)",
            [(orjson.dumps(command_to_json(c)).decode(),) for c in queued],
        )
    if cursor is not None:
        set_cursor(conn, CURSOR, cursor)
    return applied, bool(queued)


def _apply_commands(
    conn: sqlite3.Connection, commands: Sequence[AlertCommand], sink: StoreSink | None
) -> tuple[list[tuple[AlertCommand, AlertChange | None]], list[AlertCommand]]:
    """Apply commands through the sink in order; the rest (after a failure) are returned."""
    applied: list[tuple[AlertCommand, AlertChange | None]] = []
    queued: list[AlertCommand] = []
    for command in commands:
        if sink is None or queued:
            queued.append(command)  # Behind one that failed: keep the order.
            continue
        conn.execute("SAVEPOINT alert_command")
        try:
            change = sink.apply_in(conn, command)
        except sqlite3.Error:
            raise  # The disk: the whole transaction is retried.
        except Exception as exc:  # noqa: BLE001 - a store bug must not stop the rules.
            conn.execute("ROLLBACK TO alert_command")
            conn.execute("RELEASE alert_command")
            log.error("alert command failed; kept for retry", error=str(exc), rule=command.rule)  # noqa: TRY400
            queued.append(command)
            continue
        conn.execute("RELEASE alert_command")
        applied.append((command, change))
    return applied, queued


def _sink(daemon: Daemon) -> AlertSink:
    if daemon.alerts is None:
        return AlertBook(site=daemon.config.site.name)
    config = daemon.config

    def route(rule: str, rule_type: str, zone: str | None, severity: Severity) -> tuple[str, ...]:
        return route_audiences(
            config, rule=rule, rule_type=rule_type, zone=zone, severity=severity, explicit=None
        )

    return StoreSink(daemon.alerts.store, route)


async def wire(daemon: Daemon) -> RulesService:
    """Build the rules engine into the daemon: pipeline consumer plus the ``rules`` service.

    Alerts go to the daemon's SQLite alert store (through :class:`StoreSink`), which routes
    them to audiences and queues their deliveries; without one (a daemon built for a test
    without alerts) they go to an in-memory :class:`AlertBook`.
    """
    clock = RealClock()
    try:
        engine = RulesEngine(daemon.config, daemon.state, clock)
    except RuleLoadError as exc:
        raise ConfigError(f"rules cannot be set up: {exc}") from None
    service = RulesService(
        engine,
        daemon.db,
        daemon.journal,
        sink=_sink(daemon),
        clock=clock,
    )
    await service.start()
    daemon.pipeline.add_consumer(service.consume)
    daemon.services["rules"] = service.run
    return service
