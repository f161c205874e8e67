"""The event journal: every canonical event and every dead letter, durable before the ack."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from doorwatch.events import Event
from doorwatch.storage import Database, Migration

MIGRATIONS = [
    Migration(
        "journal-1",
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            dedupe_key TEXT NOT NULL UNIQUE,
            received_ts REAL NOT NULL,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            device TEXT,
            door TEXT,
            camera TEXT,
            replayed INTEGER NOT NULL,
            body BLOB NOT NULL
        );
        CREATE INDEX events_received ON events(received_ts);
        CREATE INDEX events_door ON events(door, seq);
        CREATE INDEX events_kind ON events(kind, seq);
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_ts REAL NOT NULL,
            source TEXT,
            topic TEXT,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            size INTEGER NOT NULL,
            payload BLOB
        );
        CREATE INDEX dead_letters_received ON dead_letters(received_ts);
        CREATE TABLE cursors (
            name TEXT PRIMARY KEY,
            seq INTEGER NOT NULL
        )
        """,
    )
]

# Dead letters keep enough of the payload to reproduce a decoding bug, not a megabyte of it.
DEAD_LETTER_KEEP_BYTES = 16 * 1024


# Digit runs this long may be card numbers; a dead letter keeps only their last four digits
# (device serials in it are masked too: the topic and the reason still say where it came from).
_LONG_DIGITS = re.compile(rb"\d{6,}")


def mask_digit_runs(payload: bytes) -> bytes:
    """``{"card-number": 8165537}`` -> ``{"card-number": ****5537}``."""
    return _LONG_DIGITS.sub(lambda m: b"****" + m.group(0)[-4:], payload)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be decoded, kept for the operator and for a test fixture."""

    received_at: datetime
    source: str | None
    topic: str | None
    kind: str
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class JournaledEvent:
    """An event with its position in the journal."""

    seq: int
    event: Event


class Journal:
    """Appends events and dead letters; recognises redelivered events by their dedupe key."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def setup(self) -> None:
        """Create the tables on first use."""
        await self.db.migrate(MIGRATIONS)

    async def append(
        self, events: Sequence[Event], dead_letters: Sequence[DeadLetter] = ()
    ) -> list[JournaledEvent]:
        """Durably store a batch in one transaction; return only the events not seen before."""
        rows = [
            (
                e.dedupe_key,
                e.received_at.timestamp(),
                e.kind.value,
                e.source,
                e.device,
                e.door,
                e.camera,
                int(e.replayed),
                orjson.dumps(e.to_json()),
            )
            for e in events
        ]
        dead_rows = [
            (
                d.received_at.timestamp(),
                d.source,
                d.topic,
                d.kind,
                d.reason,
                len(d.payload),
                mask_digit_runs(d.payload[:DEAD_LETTER_KEEP_BYTES]),
            )
            for d in dead_letters
        ]

        def write(conn: sqlite3.Connection) -> list[int | None]:
            # One SELECT finds redeliveries, one executemany stores the rest: far cheaper than
            # a statement per row. Seqs are consecutive because this thread is the only writer.
            known = _existing_keys(conn, [row[0] for row in rows])
            seqs: list[int | None] = []
            fresh = []
            for row in rows:
                if row[0] in known:
                    seqs.append(None)
                else:
                    known.add(row[0])
                    fresh.append(row)
                    seqs.append(0)
            if fresh:
                conn.executemany(
                    "INSERT INTO events(dedupe_key, received_ts, kind, source, device,"
                    " door, camera, replayed, body) VALUES (?,?,?,?,?,?,?,?,?)",
                    fresh,
                )
                last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
                numbers = iter(range(last - len(fresh) + 1, last + 1))
                seqs = [None if s is None else next(numbers) for s in seqs]
            if dead_rows:
                conn.executemany(
                    "INSERT INTO dead_letters(received_ts, source, topic, kind, reason, size,"
                    " payload) VALUES (?,?,?,?,?,?,?)",
                    dead_rows,
                )
            return seqs

        if not rows and not dead_rows:
            return []
        seqs = await self.db.transaction(write)
        return [
            JournaledEvent(seq, e) for seq, e in zip(seqs, events, strict=True) if seq is not None
        ]

    async def recent(
        self,
        *,
        limit: int = 100,
        door: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
    ) -> list[JournaledEvent]:
        """Return recent events, newest first, with optional filters."""
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("door = ?", door),
            ("kind = ?", kind),
            ("received_ts >= ?", since.timestamp() if since else None),
            ("received_ts < ?", until.timestamp() if until else None),
            ("seq < ?", before_seq),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT seq, body FROM events {where} ORDER BY seq DESC LIMIT ?"  # noqa: S608
        params.append(limit)

        def read(conn: sqlite3.Connection) -> list[JournaledEvent]:
            return [
                JournaledEvent(row[0], Event.from_json(orjson.loads(row[1])))
                for row in conn.execute(sql, params)
            ]

        return await self.db.call(read)

    async def after(self, seq: int, *, limit: int = 1000) -> list[JournaledEvent]:
        """Return events with a sequence number above ``seq``, oldest first."""

        def read(conn: sqlite3.Connection) -> list[JournaledEvent]:
            return [
                JournaledEvent(row[0], Event.from_json(orjson.loads(row[1])))
                for row in conn.execute(
                    "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
                )
            ]

        return await self.db.call(read)

    async def latest_per_subject(self) -> list[JournaledEvent]:
        """The newest event of each kind per door and per device, oldest first.

        Door and device state depend only on the latest event of each kind, so this rebuilds
        state at start-up without reading the whole journal.
        """

        def read(conn: sqlite3.Connection) -> list[JournaledEvent]:
            rows = conn.execute(
                """
                SELECT seq, body FROM events WHERE seq IN (
                    SELECT MAX(seq) FROM events WHERE door IS NOT NULL GROUP BY door, kind
                    UNION
                    SELECT MAX(seq) FROM events GROUP BY source, device, kind
                ) ORDER BY seq
                """
            )
            return [JournaledEvent(r[0], Event.from_json(orjson.loads(r[1]))) for r in rows]

        return await self.db.call(read)

    async def count(self) -> int:
        """Number of journaled events."""
        return await self.db.call(
            lambda c: int(c.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        )

    async def dead_letter_count(self) -> int:
        """Number of dead letters kept."""
        return await self.db.call(
            lambda c: int(c.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
        )

    async def cursor(self, name: str) -> int:
        """The last sequence number a consumer (the rules engine) has fully processed."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
            return int(row[0]) if row else 0

        return await self.db.call(read)

    async def prune(self, *, older_than: datetime) -> int:
        """Delete events and dead letters received before ``older_than``; return how many."""
        cutoff = older_than.timestamp()

        def delete(conn: sqlite3.Connection) -> int:
            removed = conn.execute("DELETE FROM events WHERE received_ts < ?", (cutoff,)).rowcount
            conn.execute("DELETE FROM dead_letters WHERE received_ts < ?", (cutoff,))
            return int(removed)

        return await self.db.transaction(delete)


# SQLite allows at most 32766 host parameters per statement; stay well below it.
_KEYS_PER_QUERY = 900


def _existing_keys(conn: sqlite3.Connection, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0]
            for row in conn.execute(
                f"SELECT dedupe_key FROM events WHERE dedupe_key IN ({marks})",  # noqa: S608
                chunk,
            )
        )
    return found


def set_cursor(conn: sqlite3.Connection, name: str, seq: int) -> None:
    """Record a consumer's progress; call inside the consumer's own transaction."""
    conn.execute(
        "INSERT INTO cursors(name, seq) VALUES (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
        (name, seq),
    )
