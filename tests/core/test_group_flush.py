"""One disk flush covers a journal batch and what the rules commit for it.

The journal commits a batch without flushing; the next synced commit (the rules' state and
the alerts the batch raised) or a small barrier write makes it durable before the ack.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from doorwatch.events import Event, EventKind
from doorwatch.journal import Journal
from doorwatch.metrics import Metrics
from doorwatch.pipeline import Pipeline
from doorwatch.state import StateStore
from doorwatch.storage import Database

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
FULL = 2


def forced(key: str) -> Event:
    return Event(
        kind=EventKind.DOOR_FORCED, source="c1", device="d1", door="gym", received_at=T0,
        dedupe_key=key,
    )  # fmt: skip


async def synchronous(db: Database) -> int:
    return int(await db.call(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]))


async def barriers(db: Database) -> int:
    return int(
        await db.call(lambda c: c.execute("SELECT COUNT(*) FROM sync_barrier").fetchone()[0])
    )


@pytest.fixture
async def db(tmp_path):
    database = await Database.open(tmp_path / "flush.db")
    await database.call(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))
    yield database
    await database.close()


async def test_a_synced_commit_makes_the_unsynced_one_before_it_durable(db):
    """No barrier write when a synced commit followed; the connection is back at FULL."""
    await db.transaction(lambda c: c.execute("INSERT INTO t VALUES (1)"), sync=False)
    assert (db.commits, db.synced) == (1, 0)
    assert await synchronous(db) == FULL
    await db.transaction(lambda c: c.execute("INSERT INTO t VALUES (2)"))
    assert (db.commits, db.synced) == (2, 2)
    await db.make_durable(1)
    assert await barriers(db) == 0


async def test_make_durable_writes_a_synced_barrier_when_nothing_followed(db):
    """Otherwise one small synced write; asking again costs nothing."""
    await db.transaction(lambda c: c.execute("INSERT INTO t VALUES (1)"), sync=False)
    await db.make_durable(db.commits)
    assert await barriers(db) == 1
    assert db.synced == db.commits == 2
    await db.make_durable(1)
    assert db.commits == 2


async def test_a_failing_unsynced_transaction_leaves_the_connection_at_full(db):
    """A rolled-back batch must not leave later commits unsynced."""

    def boom(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.transaction(boom, sync=False)
    assert await synchronous(db) == FULL
    assert (db.commits, db.synced) == (0, 0)


async def test_the_pipeline_acks_only_after_the_batch_is_on_disk(db):
    """Acked after the consumers; free when a consumer's synced commit covered the batch
    (an alert), one barrier when none did (a batch that changed nothing)."""
    journal = Journal(db)
    await journal.setup()
    pipeline = Pipeline(journal, StateStore(["gym"]), Metrics())
    seen: list[tuple[int, int]] = []
    rules_commit = True

    async def rules(batch):
        if rules_commit:
            await db.transaction(lambda c: c.execute("INSERT INTO t VALUES (?)", (len(batch),)))

    pipeline.add_consumer(rules)
    await pipeline.submit([forced("a")], after_commit=lambda: seen.append((db.commits, db.synced)))
    assert seen == [(db.commits, db.commits)]
    assert await barriers(db) == 0
    rules_commit = False
    await pipeline.submit([forced("b")], after_commit=lambda: seen.append((db.commits, db.synced)))
    assert seen[-1][1] == seen[-1][0]
    assert await barriers(db) == 1
