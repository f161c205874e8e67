"""The SQLite database behind doorwatch, driven from a dedicated thread.

Every statement runs on one thread that owns the connection, so SQLite never blocks the event
loop and writes are naturally serialised. WAL with ``synchronous=FULL`` makes a commit durable
across power loss, which is what lets us acknowledge an MQTT message after it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog

from doorwatch.errors import StorageError

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Migration:
    """One named schema change; applied once, in list order, inside a transaction."""

    name: str
    sql: str


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class Database:
    """An SQLite file with a single owner thread; use :meth:`call` to run work on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="doorwatch-db")
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) the database and tune it for durable, concurrent use."""
        db = cls(path)
        try:
            await db._run(db._connect)
        except sqlite3.Error as exc:
            db._executor.shutdown(wait=False)
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        except OSError as exc:
            db._executor.shutdown(wait=False)
            raise StorageError(f"cannot create database directory for {path}: {exc}") from exc
        return db

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives power loss; we ack MQTT messages after it.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # A backup tool or the sqlite3 shell may hold a lock briefly; wait rather than fail.
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(_BOOKKEEPING)
        self._conn = conn
        self._thread = threading.current_thread()

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection; only valid on the database thread (inside :meth:`call`)."""
        assert self._conn is not None, "database is closed"
        assert threading.current_thread() is self._thread, "database used off its thread"
        return self._conn

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread and return its result."""
        return await self._run(lambda: fn(self.conn))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in BEGIN IMMEDIATE ... COMMIT; roll back and raise StorageError on failure."""

        def run() -> T:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"database write failed: {exc}") from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return await self._run(run)

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply the migrations not yet applied, each in its own transaction."""

        def apply(conn: sqlite3.Connection) -> list[str]:
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            applied = []
            for migration in migrations:
                if migration.name in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations(name) VALUES (?)", (migration.name,)
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                applied.append(migration.name)
            return applied

        try:
            applied = await self.call(apply)
        except sqlite3.Error as exc:
            raise StorageError(f"database migration failed: {exc}") from exc
        if applied:
            log.info("database migrated", path=str(self.path), migrations=applied)

    async def close(self) -> None:
        """Checkpoint and close the connection, then stop the thread."""

        def close() -> None:
            if self._conn is not None:
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    self._conn.close()
                    self._conn = None

        try:
            await self._run(close)
        finally:
            self._executor.shutdown(wait=True)


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (triggers hold semicolons of their own)."""
    statements: list[str] = []
    buffer = ""
    for part in sql.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \n;"):
        raise sqlite3.OperationalError(f"incomplete statement in migration: {buffer.strip()[:60]}")
    return statements
