"""Unit tests of the core pieces: events, durations, journal dedupe, state, log redaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from doorwatch import logs
from doorwatch.config.base import _parse_duration
from doorwatch.config.models import parse_days, parse_window
from doorwatch.events import Event, EventKind, mask_credential
from doorwatch.journal import DeadLetter, Journal
from doorwatch.state import DoorAlarm, DoorPosition, StateStore
from doorwatch.storage import Database

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def ev(
    kind: EventKind, key: str, *, at: timedelta = timedelta(0), door: str | None = "gym", **kw
) -> Event:
    return Event(
        kind=kind, source="c1", device="d1", door=door, received_at=T0 + at, dedupe_key=key, **kw
    )


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("8165537", "****5537"),
        (8165538, "****5538"),
        ("12", "****2"),
        ("", None),
        (None, None),
        ("****1234", "****1234"),
        # A leading star is not a licence to pass a card number through unmasked.
        ("*12345678", "****5678"),
        ("**8165537", "****5537"),
    ],
)
def test_card_numbers_are_masked(raw, masked):
    """Only the last four digits of a card survive; short values keep one character."""
    assert mask_credential(raw) == masked


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("2d", 172800),
        (45, 45),
        ("1.5", 1.5),
        ("250ms", 0.25),
    ],
)
def test_durations(text, seconds):
    """Durations are numbers of seconds or number+unit strings."""
    assert _parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["30 seconds", "-5s", True, "s", None])
def test_bad_durations_are_refused(bad):
    """Anything else is an error (never silently zero)."""
    with pytest.raises(ValueError, match="duration"):
        _parse_duration(bad)


def test_day_specs_and_windows():
    """Day ranges wrap the week; windows may run past midnight."""
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("sat, sun") == frozenset({5, 6})
    assert parse_days("daily") == frozenset(range(7))
    start, end = parse_window("22:00-06:00")
    assert start > end


async def test_journal_drops_redelivered_events_and_keeps_dead_letters(tmp_path):
    """The same dedupe key twice (a redelivery) is stored once; dead letters are kept."""
    db = await Database.open(tmp_path / "j.db")
    journal = Journal(db)
    await journal.setup()
    first = await journal.append([ev(EventKind.DOOR_OPENED, "a"), ev(EventKind.DOOR_CLOSED, "b")])
    assert [j.seq for j in first] == [1, 2]
    again = await journal.append(
        [ev(EventKind.DOOR_OPENED, "a"), ev(EventKind.DOOR_OPENED, "c")],
        [DeadLetter(T0, "c1", "t", "malformed", "not JSON", b"x" * 100_000)],
    )
    assert [j.event.dedupe_key for j in again] == ["c"]
    assert again[0].seq > first[-1].seq
    assert await journal.count() == 3
    assert await journal.dead_letter_count() == 1
    recent = await journal.recent(limit=2)
    assert [j.event.dedupe_key for j in recent] == ["c", "b"]
    assert recent[0].event == ev(EventKind.DOOR_OPENED, "c")
    await db.close()


async def test_dead_letters_keep_no_card_numbers(tmp_path):
    """A malformed message may carry a card number: the dead letter keeps its last four
    digits only (short numbers, such as a door id, stay)."""
    db = await Database.open(tmp_path / "j.db")
    journal = Journal(db)
    await journal.setup()
    payload = b'{"card-number": 8165537, "door-id": 3, "event-id": 12, "oops"'
    await journal.append([], [DeadLetter(T0, "c1", "t", "malformed", "not JSON", payload)])
    (stored,) = await db.call(lambda c: c.execute("SELECT payload FROM dead_letters").fetchone())
    assert bytes(stored) == b'{"card-number": ****5537, "door-id": 3, "event-id": 12, "oops"'
    await db.close()


async def test_latest_per_subject_rebuilds_the_same_state(tmp_path):
    """State rebuilt from the newest event per door/device/kind equals state fed every event."""
    db = await Database.open(tmp_path / "j.db")
    journal = Journal(db)
    await journal.setup()
    events = [
        ev(
            EventKind.ACCESS_GRANTED,
            "1",
            at=timedelta(seconds=1),
            holder="Ann",
            credential="****1111",
        ),
        ev(EventKind.DOOR_OPENED, "2", at=timedelta(seconds=2)),
        ev(EventKind.DOOR_CLOSED, "3", at=timedelta(seconds=9)),
        ev(EventKind.DOOR_OPENED, "4", at=timedelta(seconds=20)),
        ev(EventKind.DOOR_HELD_OPEN, "5", at=timedelta(seconds=60)),
        ev(EventKind.DEVICE_OFFLINE, "6", at=timedelta(seconds=61), door=None),
    ]
    await journal.append(events)
    full = StateStore(["gym"])
    for event in events:
        full.apply(event)
    rebuilt = StateStore(["gym"])
    for item in await journal.latest_per_subject():
        rebuilt.apply(item.event)
    assert rebuilt.door("gym").to_json() == full.door("gym").to_json()
    assert rebuilt.door("gym").position is DoorPosition.OPEN
    assert rebuilt.door("gym").since == T0 + timedelta(seconds=20)
    assert rebuilt.door("gym").alarms == {DoorAlarm.HELD}
    assert rebuilt.device("c1", "d1").online is False
    await db.close()


def test_state_ignores_late_events_for_position_and_tells_listeners():
    """A late (older) event does not roll the door back; listeners hear each real change."""
    store = StateStore(["gym"])
    changes: list[str] = []
    store.subscribe(lambda door: changes.append(door.position.value))
    store.apply(ev(EventKind.DOOR_OPENED, "1", at=timedelta(seconds=10)))
    store.apply(ev(EventKind.DOOR_CLOSED, "2", at=timedelta(seconds=5)))  # Late: older than open.
    assert store.door("gym").position is DoorPosition.OPEN
    store.apply(ev(EventKind.DOOR_CLOSED, "3", at=timedelta(seconds=30)))
    assert changes == ["open", "closed"]


def test_state_batch_tells_listeners_once_per_changed_door_with_its_final_state():
    """A batch of many events for a door is one notification, carrying the state after it."""
    store = StateStore(["gym", "office"])
    changes: list[tuple[str, str, str | None]] = []
    store.subscribe(
        lambda door: changes.append(
            (door.door, door.position.value, door.last_access.holder if door.last_access else None)
        )
    )
    batch = [
        ev(EventKind.ACCESS_GRANTED, "1", at=timedelta(seconds=1), holder="A"),
        ev(EventKind.DOOR_OPENED, "2", at=timedelta(seconds=2)),
        ev(EventKind.ACCESS_GRANTED, "3", at=timedelta(seconds=3), holder="B"),
        ev(EventKind.DOOR_CLOSED, "4", at=timedelta(seconds=4)),
        ev(EventKind.DOOR_OPENED, "5", at=timedelta(seconds=5), door="office"),
        ev(EventKind.DEVICE_ONLINE, "6", at=timedelta(seconds=6), door=None),
    ]
    store.apply_batch(batch)
    assert changes == [("gym", "closed", "B"), ("office", "open", None)]
    # Nothing that changes no door: no notification.
    changes.clear()
    store.apply_batch([ev(EventKind.DEVICE_ONLINE, "7", at=timedelta(seconds=7), door=None)])
    assert changes == []
    # One event at a time still notifies at once.
    store.apply(ev(EventKind.DOOR_OPENED, "8", at=timedelta(seconds=8)))
    assert changes == [("gym", "open", "B")]


def test_logs_redact_secrets_and_mask_cards(capsys):
    """Secret-looking keys are redacted and card numbers masked in every log line."""
    logs.configure("info", "json")
    log = structlog.get_logger("t")
    log.info(
        "x", password="hunter2", api_key="k", card_number=8165537, session_present=True, detail="ok"
    )
    record = json.loads(capsys.readouterr().err)
    assert record["password"] == "[redacted]"
    assert record["api_key"] == "[redacted]"
    assert record["card_number"] == "****5537"
    assert record["session_present"] is True
    assert logs.mask_digits("card 405419896 swiped") == "card ****9896 swiped"


def test_startup_objects_are_frozen_out_of_the_collectors_sight():
    """After start-up, full collections skip what start-up built (short loop pauses)."""
    import gc

    from doorwatch.app import freeze_startup_objects

    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
