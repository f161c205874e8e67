"""Durable rules on a real SQLite file: timers survive a restart and fire on time, events the
rules had not seen before a crash are caught up, commands reach the sink exactly once."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from rules_site import SITE

from doorwatch.alerts.model import AlertBook, AlertTransition, RaiseAlert
from doorwatch.events import Event, EventKind
from doorwatch.journal import Journal
from doorwatch.rules.clock import VirtualClock
from doorwatch.rules.engine import RulesEngine
from doorwatch.rules.service import RulesService
from doorwatch.state import StateStore
from doorwatch.storage import Database
from doorwatch.testing import RuleHarness

T0 = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
RULES = """
rules:
  - {type: door_held_open}
  - {type: door_forced_open}
"""


def config(rules: str = RULES):
    return RuleHarness(SITE + rules).config


@dataclass
class Site:
    """One 'process' of the daemon's rules part, on a given database file and clock."""

    db: Database
    journal: Journal
    state: StateStore
    service: RulesService
    clock: VirtualClock
    book: AlertBook
    numbers: int = 0
    transitions: list[AlertTransition] = field(default_factory=list)

    async def send(self, kind: EventKind, door: str = "main", *, key: str | None = None):
        """Journal an event at the clock's time and run the rules over it (the pipeline)."""
        self.numbers += 1
        event = Event(
            kind=kind,
            source="uhppote",
            door=door,
            received_at=self.clock.now(),
            dedupe_key=key or f"e{self.clock.now().timestamp()}-{self.numbers}",
        )
        new = await self.journal.append([event])
        for item in new:
            self.state.apply(item.event)
        await self.service.consume(new)

    async def journal_only(self, kind: EventKind, door: str = "main", *, at: datetime) -> None:
        """Journal an event the rules never see (the process dies before the consumer runs)."""
        event = Event(
            kind=kind,
            source="uhppote",
            door=door,
            received_at=at,
            dedupe_key=f"j:{kind}:{door}:{at}",
        )
        await self.journal.append([event])

    async def wait(self, seconds: float) -> None:
        """Let time pass; write and deliver what the timers produced (the service loop)."""
        self.clock.advance(seconds)
        await self.service.flush()

    def actions(self) -> list[str]:
        return [
            f"{t.action.value} {t.alert.rule} {t.alert.severity.value} @{(t.time - T0).total_seconds():g}"
            for t in self.transitions
        ]


async def start(path, clock: VirtualClock, book: AlertBook, rules: str = RULES) -> Site:
    """Build the rules part the way the daemon does at start-up."""
    site_config = config(rules)
    db = await Database.open(path)
    journal = Journal(db)
    await journal.setup()
    state = StateStore(d.id for d in site_config.doors)
    for item in await journal.latest_per_subject():
        state.apply(item.event)
    engine = RulesEngine(site_config, state, clock)
    service = RulesService(engine, db, journal, sink=book, clock=clock)
    site = Site(db, journal, state, service, clock, book)
    service.listeners.append(site.transitions.append)
    await service.start()
    return site


async def crash(site: Site) -> None:
    """The process dies: nothing is flushed or stopped; only the file handle goes."""
    await site.db.close()


def rows(path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "doorwatch.db"


async def test_door_propped_before_a_restart_alarms_on_time_after_it(db_path):
    """Opened at T0 (alarm due T0+30 s); the process dies at T0+10 s and is back at T0+20 s
    with a new monotonic clock: the alarm fires at T0+30 s, not 30 s after the restart."""
    book = AlertBook(site="Lincoln High")
    first = await start(db_path, VirtualClock(T0), book)
    await first.send(EventKind.DOOR_OPENED)
    await first.wait(10)
    assert book.alerts() == []
    assert rows(db_path, "SELECT rule, name FROM rule_timers") == [
        ("door_held_open", "held:door:main")
    ]
    await crash(first)

    second = await start(db_path, VirtualClock(T0 + timedelta(seconds=20)), book)
    await second.wait(9.9)
    assert book.alerts() == []
    await second.wait(0.1)
    assert second.actions() == ["raised door_held_open high @30"]
    assert rows(db_path, "SELECT * FROM rule_timers") == []
    await second.send(EventKind.DOOR_CLOSED)
    assert second.actions()[-1] == "resolved door_held_open high @30"
    await crash(second)


async def test_prealarm_before_and_escalation_after_a_restart_are_one_alert(db_path):
    """The pre-alarm fires before the restart, the alarm after it escalates the same alert,
    and the close after that resolves it: the open condition was remembered too."""
    book = AlertBook(site="Lincoln High")
    first = await start(db_path, VirtualClock(T0), book)
    await first.send(EventKind.DOOR_OPENED, "gym-east")
    await first.wait(21)
    await crash(first)
    second = await start(db_path, VirtualClock(T0 + timedelta(seconds=25)), book)
    await second.wait(5)
    await second.send(EventKind.DOOR_CLOSED, "gym-east")
    assert [(t.action.value, t.alert.id) for t in first.transitions + second.transitions] == [
        ("raised", "20260105-1"),
        ("escalated", "20260105-1"),
        ("resolved", "20260105-1"),
    ]


async def test_overdue_timer_fires_at_start_up_with_its_own_time(db_path):
    """Down past the deadline: the alarm fires as soon as the rules start, stamped T0+30 s."""
    book = AlertBook(site="s")
    first = await start(db_path, VirtualClock(T0), book)
    await first.send(EventKind.DOOR_OPENED)
    await crash(first)
    second = await start(db_path, VirtualClock(T0 + timedelta(minutes=10)), book)
    assert second.actions() == ["raised door_held_open high @30"]
    await crash(second)


async def test_events_the_rules_never_saw_are_caught_up_in_order(db_path):
    """Events journaled but not processed before a crash are processed at start-up. The door
    closed at T0+45 s, after its alarm time: the alarm fires (T0+30) and then resolves (T0+45),
    as it would have live; a door that closed in time does not alarm."""
    book = AlertBook(site="s")
    first = await start(db_path, VirtualClock(T0), book)
    await first.journal_only(EventKind.DOOR_OPENED, "main", at=T0)
    await first.journal_only(EventKind.DOOR_OPENED, "sro-office", at=T0)
    await first.journal_only(EventKind.DOOR_CLOSED, "sro-office", at=T0 + timedelta(seconds=10))
    await first.journal_only(EventKind.DOOR_CLOSED, "main", at=T0 + timedelta(seconds=45))
    await crash(first)
    second = await start(db_path, VirtualClock(T0 + timedelta(minutes=2)), book)
    assert second.actions() == [
        "raised door_held_open high @30",
        "resolved door_held_open high @45",
    ]
    (cursor,) = rows(db_path, "SELECT seq FROM cursors WHERE name = 'rules'")
    assert cursor == (4,)
    await crash(second)


async def test_cursor_timers_and_outbox_are_written_together(db_path):
    """A batch that changes rule state moves the cursor in the same write; delivered commands
    leave the outbox."""
    book = AlertBook(site="s")
    site = await start(db_path, VirtualClock(T0), book)
    await site.send(EventKind.EXIT_REQUEST)  # Rule memory only: the cursor may linger.
    await site.wait(60)
    await site.send(EventKind.DOOR_OPENED)  # Forced (the REX is too old), and held timers.
    assert rows(db_path, "SELECT seq FROM cursors WHERE name = 'rules'") == [(2,)]
    assert rows(db_path, "SELECT COUNT(*) FROM rule_timers") == [(1,)]
    assert rows(db_path, "SELECT COUNT(*) FROM rule_outbox") == [(0,)]
    assert [a.rule for a in book.alerts()] == ["door_forced_open"]
    await crash(site)


async def test_a_batch_that_changes_nothing_moves_the_cursor_lazily(db_path):
    """Events that change no rule state move the cursor at most once a second (they would
    change nothing if processed again); the service loop writes the lingering cursor."""
    book = AlertBook(site="s")
    site = await start(db_path, VirtualClock(T0), book)
    await site.send(EventKind.EXIT_REQUEST)
    assert rows(db_path, "SELECT seq FROM cursors WHERE name = 'rules'") == [(1,)]
    await site.send(EventKind.EXIT_REQUEST)
    await site.send(EventKind.EXIT_REQUEST)
    assert rows(db_path, "SELECT seq FROM cursors WHERE name = 'rules'") == [(1,)]
    await site.service.flush()
    assert rows(db_path, "SELECT seq FROM cursors WHERE name = 'rules'") == [(3,)]
    await crash(site)


class FlakySink(AlertBook):
    """An alert store whose disk fails for a while."""

    def __init__(self) -> None:
        super().__init__(site="s")
        self.failing = True

    async def raise_alert(self, request: RaiseAlert):
        if self.failing:
            raise OSError("disk full")
        return await super().raise_alert(request)


async def test_undelivered_commands_wait_in_the_outbox_and_survive_a_restart(db_path):
    """A sink that fails keeps the command in the outbox; retried, and after a restart, it is
    delivered exactly once."""
    sink = FlakySink()
    first = await start(db_path, VirtualClock(T0), sink)
    await first.send(EventKind.DOOR_FORCED)
    assert rows(db_path, "SELECT COUNT(*) FROM rule_outbox") == [(1,)]
    await first.service.flush()
    assert sink.alerts() == []
    await crash(first)
    sink.failing = False
    second = await start(db_path, VirtualClock(T0 + timedelta(seconds=5)), sink)
    assert second.actions() == ["raised door_forced_open critical @0"]
    assert rows(db_path, "SELECT COUNT(*) FROM rule_outbox") == [(0,)]
    await second.service.flush()
    assert len(sink.alerts()) == 1
    assert sink.alerts()[0].occurrences == 1
    await crash(second)


async def test_first_start_on_an_old_journal_does_not_alert_on_history(db_path):
    """Rules added to a site with a journal start at its end: old events are not news."""
    book = AlertBook(site="s")
    db = await Database.open(db_path)
    journal = Journal(db)
    await journal.setup()
    await journal.append(
        [
            Event(
                kind=EventKind.DOOR_FORCED,
                source="x",
                door="main",
                received_at=T0,
                dedupe_key="old",
            )
        ]
    )
    await db.close()
    site = await start(db_path, VirtualClock(T0 + timedelta(days=1)), book)
    assert book.alerts() == []
    assert rows(db_path, "SELECT seq FROM cursors WHERE name = 'rules'") == [(1,)]
    await crash(site)


async def test_timers_of_a_removed_rule_are_dropped(db_path):
    """A timer of a rule no longer in the config is deleted at start-up, not fired."""
    book = AlertBook(site="s")
    first = await start(db_path, VirtualClock(T0), book)
    await first.send(EventKind.DOOR_OPENED)
    await crash(first)
    second = await start(
        db_path, VirtualClock(T0 + timedelta(seconds=5)), book, "rules: [{type: duress}]"
    )
    await second.wait(60)
    assert book.alerts() == []
    assert rows(db_path, "SELECT COUNT(*) FROM rule_timers") == [(0,)]
    await crash(second)
