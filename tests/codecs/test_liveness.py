"""Device liveness from heartbeat silence, on a real journal and pipeline with fake clocks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from doorwatch.adapters.mqtt.liveness import DeviceLiveness
from doorwatch.events import Event, EventKind
from doorwatch.journal import Journal
from doorwatch.metrics import Metrics
from doorwatch.pipeline import Pipeline
from doorwatch.state import StateStore
from doorwatch.storage import Database

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)


class Clocks:
    """A monotonic and a wall clock that only move when the test says so."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.now = T0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.now += timedelta(seconds=seconds)


def event(
    kind: EventKind,
    device: str = "esp-front",
    *,
    source: str = "esp",
    at: datetime = T0,
    replayed: bool = False,
    key: str | None = None,
) -> Event:
    return Event(
        kind=kind,
        source=source,
        device=device,
        received_at=at,
        replayed=replayed,
        dedupe_key=key or f"{source}:{device}:{kind.value}:{at.timestamp()}",
    )


@pytest.fixture
async def site(tmp_path):
    db = await Database.open(tmp_path / "live.db")
    journal = Journal(db)
    await journal.setup()
    state = StateStore()
    pipeline = Pipeline(journal, state, Metrics())
    yield pipeline, state, journal
    await db.close()


async def kinds_of(journal: Journal) -> list[tuple[str, str | None]]:
    items = await journal.recent(limit=100)
    return [(item.event.kind.value, item.event.device) for item in reversed(items)]


async def feed(pipeline: Pipeline, liveness: DeviceLiveness, *events: Event) -> None:
    """Journal events as ingest would, then let liveness journal what is due."""
    await pipeline.submit(list(events))
    due = liveness.due()
    if due:
        await pipeline.submit(due)


async def test_silent_heartbeating_device_goes_offline_then_online_when_heard(site):
    """A device that heartbeats and then stays silent past the timeout gets one synthetic
    device.offline; the next message from it brings a device.online."""
    pipeline, state, journal = site
    clocks = Clocks()
    liveness = DeviceLiveness(
        pipeline, state, {"esp": 180.0}, monotonic=clocks.monotonic, wall=clocks.wall
    )
    await liveness.seed()
    pipeline.add_consumer(liveness.observe)
    await feed(pipeline, liveness, event(EventKind.DEVICE_HEARTBEAT))
    clocks.advance(179)
    assert liveness.due() == []
    assert liveness.next_check() == pytest.approx(1.0)
    clocks.advance(2)
    (offline,) = liveness.due()
    assert offline.kind is EventKind.DEVICE_OFFLINE
    assert (offline.source, offline.device, offline.door) == ("esp", "esp-front", None)
    assert offline.received_at == clocks.now
    assert offline.replayed is False
    assert offline.reason == "silent for 181 s (heartbeat_timeout 180 s)"
    assert offline.dedupe_key.startswith("liveness:esp:esp-front:device.offline:")
    await pipeline.submit([offline])
    clocks.advance(600)
    assert liveness.due() == []  # Offline once, not again every check.
    await feed(pipeline, liveness, event(EventKind.DOOR_OPENED, at=clocks.now))
    assert await kinds_of(journal) == [
        ("device.heartbeat", "esp-front"),
        ("device.offline", "esp-front"),
        ("door.opened", "esp-front"),
        ("device.online", "esp-front"),
    ]
    assert state.device("esp", "esp-front").online is True


async def test_only_devices_that_heartbeat_are_judged_by_silence(site):
    """A controller that only reports door events (quiet all night by design) is never
    declared offline by silence; nor are controllers without a heartbeat timeout."""
    pipeline, state, _ = site
    clocks = Clocks()
    liveness = DeviceLiveness(
        pipeline, state, {"uhppote": 60.0}, monotonic=clocks.monotonic, wall=clocks.wall
    )
    await liveness.seed()
    pipeline.add_consumer(liveness.observe)
    await pipeline.submit([event(EventKind.DOOR_OPENED, "405419896", source="uhppote")])
    await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT, "gw", source="other")])
    clocks.advance(3600)
    assert liveness.due() == []
    assert liveness.next_check() == 60.0  # Nothing watched: the idle re-check interval.


async def test_replayed_messages_are_not_the_device_speaking(site):
    """Retained or backlog messages neither start watching a device nor count as heard."""
    pipeline, state, _ = site
    clocks = Clocks()
    liveness = DeviceLiveness(
        pipeline, state, {"esp": 10.0}, monotonic=clocks.monotonic, wall=clocks.wall
    )
    pipeline.add_consumer(liveness.observe)
    await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT, key="a", replayed=True)])
    assert liveness.devices == {}
    await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT, key="b")])
    clocks.advance(8)
    await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT, key="c", replayed=True)])
    clocks.advance(3)
    assert [e.kind for e in liveness.due()] == [EventKind.DEVICE_OFFLINE]


async def test_a_source_reported_offline_is_not_repeated_and_its_online_not_echoed(site):
    """An offline from the source itself (LWT, availability) is taken as is: no synthetic
    offline follows; its own online needs no echo, any other message gets one."""
    pipeline, state, journal = site
    clocks = Clocks()
    liveness = DeviceLiveness(
        pipeline, state, {"esp": 10.0}, monotonic=clocks.monotonic, wall=clocks.wall
    )
    pipeline.add_consumer(liveness.observe)
    await feed(pipeline, liveness, event(EventKind.DEVICE_HEARTBEAT, key="hb"))
    await feed(pipeline, liveness, event(EventKind.DEVICE_OFFLINE, key="lwt"))
    clocks.advance(60)
    assert liveness.due() == []
    await feed(pipeline, liveness, event(EventKind.DEVICE_ONLINE, key="avty"))
    assert [k for k, _ in await kinds_of(journal)] == [
        "device.heartbeat",
        "device.offline",
        "device.online",
    ]


async def test_restart_remembers_last_heard_from_storage(site):
    """After a restart, devices that heartbeat come from the journal and their last-heard time
    from the state store: one silent since before the restart goes offline at once, one
    already offline is not reported again."""
    pipeline, state, _ = site
    old = T0 - timedelta(minutes=10)
    await pipeline.submit(
        [
            event(EventKind.DEVICE_HEARTBEAT, "esp-front", at=old),
            event(EventKind.DEVICE_HEARTBEAT, "esp-back", at=old),
            event(EventKind.DEVICE_OFFLINE, "esp-back", at=old + timedelta(minutes=3), key="gone"),
            event(EventKind.DEVICE_HEARTBEAT, "esp-side", at=T0 - timedelta(seconds=30)),
        ]
    )
    restarted = StateStore()
    for item in await pipeline.journal.latest_per_subject():
        restarted.apply(item.event)
    clocks = Clocks()
    liveness = DeviceLiveness(
        pipeline, restarted, {"esp": 180.0}, monotonic=clocks.monotonic, wall=clocks.wall
    )
    await liveness.seed()
    assert sorted(liveness.devices) == [
        ("esp", "esp-back"),
        ("esp", "esp-front"),
        ("esp", "esp-side"),
    ]
    assert [(e.kind, e.device) for e in liveness.due()] == [(EventKind.DEVICE_OFFLINE, "esp-front")]
    # esp-side was heard 30 s before the restart: 150 s to go (checks are at most 60 s apart).
    assert liveness.next_check() == 60.0
    clocks.advance(100)
    assert liveness.next_check() == pytest.approx(50.0)


async def test_a_wall_clock_step_neither_fires_nor_hides_a_timeout(site):
    """Silence is measured on the monotonic clock: a wall-clock jump of a day changes nothing."""
    pipeline, state, _ = site
    clocks = Clocks()
    liveness = DeviceLiveness(
        pipeline, state, {"esp": 180.0}, monotonic=clocks.monotonic, wall=clocks.wall
    )
    pipeline.add_consumer(liveness.observe)
    await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT)])
    clocks.now += timedelta(days=1)
    assert liveness.due() == []


async def test_run_journals_offline_and_online_on_its_own(site):
    """The running task wakes at the deadline and when a silent device is heard again."""
    pipeline, state, journal = site
    liveness = DeviceLiveness(pipeline, state, {"esp": 0.2})
    task = asyncio.create_task(liveness.run(), name="test.liveness")
    try:
        await asyncio.sleep(0)
        await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT, key="hb1")])
        await wait_for(journal, ["device.heartbeat", "device.offline"])
        await pipeline.submit([event(EventKind.DEVICE_HEARTBEAT, key="hb2")])
        await wait_for(
            journal, ["device.heartbeat", "device.offline", "device.heartbeat", "device.online"]
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert liveness.observe not in pipeline.consumers


async def wait_for(journal: Journal, expected: list[str], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        kinds = [k for k, _ in await kinds_of(journal)]
        if kinds == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"journal holds {kinds}, expected {expected}")
        await asyncio.sleep(0.02)
