"""The outbox against real local receivers: webhook (HMAC) and Apprise (json://)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import sqlite3
import time

import aiohttp
import pytest
from receiver import Receiver

from doorwatch.config.models import AppriseTarget, WebhookConfig
from doorwatch.metrics import Metrics
from doorwatch.notify.apprise_target import AppriseNotifier, with_priority
from doorwatch.notify.outbox import Outbox, RetryPolicy, enqueue
from doorwatch.notify.webhook import WebhookNotifier
from doorwatch.storage import Database

FAST = RetryPolicy(base=0.05, cap=0.2, give_up_after=30)


def payload(alert_id: str, severity: str = "high", action: str = "raised") -> dict:
    return {
        "action": action,
        "site": "test-high",
        "alert": {
            "id": alert_id,
            "rule": "door_forced_open",
            "severity": severity,
            "title": "Door forced",
            "door": "gym-east",
            "door_name": "Gym east",
            "audiences": ["guards"],
            "state": "active",
        },
    }


@contextlib.asynccontextmanager
async def outbox_with(tmp_path, notifiers, policy=FAST):
    db = await Database.open(tmp_path / "o.db")
    box = Outbox(db, {n.target: n for n in notifiers}, Metrics(), policy=policy)
    await box.setup()
    task = asyncio.create_task(box.run())
    try:
        yield db, box
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.close()


async def add(db: Database, box: Outbox, alert_id: str, transition: int, targets, **kw) -> None:
    await db.transaction(
        lambda c: enqueue(c, alert_id, transition, payload(alert_id, **kw), targets)
    )
    box.wake()


async def test_webhook_is_signed_and_carries_the_idempotency_key(tmp_path):
    """The receiver can verify the HMAC-SHA256 signature of the exact body it got."""
    receiver = Receiver()
    await receiver.start()
    async with aiohttp.ClientSession() as http:
        hook = WebhookNotifier(
            WebhookConfig(url=receiver.url + "/hook"), index=0, secret="k3y", session=http
        )
        async with outbox_with(tmp_path, [hook]) as (db, box):
            await add(db, box, "A1", 1, [hook.target])
            (got,) = await receiver.wait_for(1)
    await receiver.stop()
    expected = "sha256=" + hmac.new(b"k3y", got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Doorwatch-Signature"] == expected
    assert got.headers["Idempotency-Key"] == "A1:1:webhook:0"
    assert got.json()["alert"]["id"] == "A1"


async def test_receiver_down_for_a_while_gets_every_alert_after_it_recovers(tmp_path):
    """Twenty alerts while the receiver answers 500 or is gone: all arrive once it is back,
    each with its own idempotency key; duplicates, if any, only repeat a key."""
    receiver = Receiver(status=500)
    await receiver.start()
    port = receiver.port
    async with aiohttp.ClientSession() as http:
        hook = WebhookNotifier(
            WebhookConfig(url=receiver.url + "/hook"), index=0, secret=None, session=http
        )
        async with outbox_with(tmp_path, [hook]) as (db, box):
            for i in range(10):
                await add(db, box, f"A{i}", 1, [hook.target])
            while receiver.attempts < 15:
                await asyncio.sleep(0.02)
            await receiver.stop()  # Now nothing listens at all.
            for i in range(10, 20):
                await add(db, box, f"A{i}", 1, [hook.target])
            await asyncio.sleep(0.5)
            receiver.status = 200
            await receiver.start(port)
            await receiver.wait_for(20)
            await asyncio.sleep(0.3)
            counts = await box.counts()
    await receiver.stop()
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert set(keys) == {f"A{i}:1:webhook:0" for i in range(20)}
    assert counts == {"sent": 20}


async def test_enqueuing_the_same_transition_twice_sends_once(tmp_path):
    """A transition re-enqueued after a crash adds nothing: one delivery per key."""
    receiver = Receiver()
    await receiver.start()
    async with aiohttp.ClientSession() as http:
        hook = WebhookNotifier(WebhookConfig(url=receiver.url), index=0, secret=None, session=http)
        async with outbox_with(tmp_path, [hook]) as (db, box):
            await add(db, box, "A1", 1, [hook.target])
            await add(db, box, "A1", 1, [hook.target])
            await add(db, box, "A1", 2, [hook.target], action="resolved")
            await receiver.wait_for(2)
            await asyncio.sleep(0.3)
    await receiver.stop()
    assert [r.headers["Idempotency-Key"] for r in receiver.received] == [
        "A1:1:webhook:0",
        "A1:2:webhook:0",
    ]


async def test_a_handed_over_delivery_is_sent_without_waiting_for_the_database(tmp_path):
    """The committed delivery goes out while the database thread is still busy elsewhere
    (a journal batch, in the daemon); handing it over again or reading it back from the
    table never sends it twice."""
    receiver = Receiver(delay=0.3)
    await receiver.start()
    async with aiohttp.ClientSession() as http:
        hook = WebhookNotifier(WebhookConfig(url=receiver.url), index=0, secret=None, session=http)
        async with outbox_with(tmp_path, [hook]) as (db, box):
            await asyncio.sleep(0.1)  # The worker has started and is idle.
            deliveries = await db.transaction(
                lambda c: enqueue(c, "A1", 1, payload("A1"), [hook.target])
            )
            assert [d.idempotency_key for d in deliveries] == ["A1:1:webhook:0"]
            busy = asyncio.ensure_future(db.call(lambda _c: time.sleep(1.5)))
            await asyncio.sleep(0.05)  # The database thread is now blocked.
            started = time.monotonic()
            box.hand_over(deliveries)
            box.hand_over(deliveries)  # In flight: not started twice.
            await receiver.wait_for(1, timeout=1.2)
            assert time.monotonic() - started < 1.0
            assert not busy.done()
            await busy
            box.hand_over(deliveries)  # Already sent: not sent again.
            box.wake()
            await asyncio.sleep(0.8)
            states = await db.call(lambda c: c.execute("SELECT state FROM outbox").fetchall())
    await receiver.stop()
    assert receiver.attempts == 1
    assert [tuple(row) for row in states] == [("sent",)]


async def test_a_delivery_past_give_up_is_dead_and_counted(tmp_path):
    """A receiver that never recovers: the delivery becomes dead after give_up_after."""
    receiver = Receiver(status=503)
    await receiver.start()
    async with aiohttp.ClientSession() as http:
        hook = WebhookNotifier(WebhookConfig(url=receiver.url), index=0, secret=None, session=http)
        policy = RetryPolicy(base=0.05, cap=0.1, give_up_after=0.5)
        async with outbox_with(tmp_path, [hook], policy) as (db, box):
            await add(db, box, "A1", 1, [hook.target])
            for _ in range(100):
                if (await box.counts()).get("dead"):
                    break
                await asyncio.sleep(0.05)
            assert await box.counts() == {"dead": 1}
            assert box.metrics.deliveries_dead._value.get() == 1
            (row,) = await box.for_alert("A1")
    await receiver.stop()
    assert row["state"] == "dead"
    assert row["last_error"] == "HTTP 503"
    assert row["attempts"] >= 2


async def test_slow_receiver_does_not_hold_other_targets(tmp_path):
    """A webhook that hangs past its timeout is retried; a second webhook still gets its
    deliveries promptly."""
    slow, fast = Receiver(delay=5), Receiver()
    await slow.start()
    await fast.start()
    async with aiohttp.ClientSession() as http:
        hooks = [
            WebhookNotifier(
                WebhookConfig(url=slow.url, name="slow", timeout=0.3),
                index=0,
                secret=None,
                session=http,
            ),
            WebhookNotifier(
                WebhookConfig(url=fast.url, name="fast"), index=1, secret=None, session=http
            ),
        ]
        async with outbox_with(tmp_path, hooks) as (db, box):
            started = asyncio.get_running_loop().time()
            for i in range(5):
                await add(db, box, f"A{i}", 1, [h.target for h in hooks])
            await fast.wait_for(5, timeout=3)
            assert asyncio.get_running_loop().time() - started < 2
            slow.delay = 0
            await slow.wait_for(5, timeout=10)
    await slow.stop()
    await fast.stop()


async def test_apprise_json_url_reaches_a_local_receiver(tmp_path):
    """Apprise pointed at a local json:// receiver delivers title, body and type."""
    receiver = Receiver()
    await receiver.start()
    target = AppriseTarget(url=f"json://127.0.0.1:{receiver.port}/push", audience="guards")
    notifier = AppriseNotifier(target, index=0, url=target.url or "")
    async with outbox_with(tmp_path, [notifier]) as (db, box):
        await add(db, box, "A1", 1, [notifier.target], severity="critical")
        (got,) = await receiver.wait_for(1)
    await receiver.stop()
    body = got.json()
    assert body["title"] == "Door forced"
    assert "Where: Gym east" in body["message"]
    assert body["type"] == "failure"


@pytest.mark.parametrize(
    ("url", "severity", "expected"),
    [
        ("ntfys://ntfy.example/guards", "critical", "ntfys://ntfy.example/guards?priority=max"),
        ("ntfy://host/topic?priority=low", "critical", "ntfy://host/topic?priority=low"),
        ("pover://user@token", "low", "pover://user@token?priority=-1"),
        ("json://host/x", "critical", "json://host/x"),
    ],
)
def test_push_priority_follows_severity(url, severity, expected):
    """ntfy and Pushover get a priority from the severity unless the URL sets one."""
    assert with_priority(url, severity) == expected


def test_outbox_table_refuses_unknown_states(tmp_path):
    """The schema itself guards the delivery states."""
    conn = sqlite3.connect(":memory:")
    from doorwatch.notify.outbox import MIGRATIONS

    conn.executescript(MIGRATIONS[0].sql)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO outbox(alert_id, target, idempotency_key, payload, state, next_at, created_at)"
            " VALUES ('a','t','k',x'00','maybe',0,0)"
        )
