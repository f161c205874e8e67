"""SIGKILL ten times during a 5,000-event stream that also carries forced doors: every event
journaled once, every alert stored once with the right count, every delivery received.

Of the 5,000 QoS 1 events, 50 are ``door.forced`` at 40 doors (30 doors once, 10 doors
twice), so the rules must leave exactly 40 alerts: one per door, with 1 or 2 occurrences.
A kill can land between the journal commit and the rules' commit, or while a webhook request
is in flight; after restarts nothing may be lost or counted twice, and each webhook delivery
committed in the outbox must reach the receiver (at least once; a repeat carries the same
idempotency key and the same alert).

Figures go to test-artifacts/reliability-kill-loop-alerts.json.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, Publisher, free_port, journal_rows, wait_healthy, wait_until
from hooks import FaultyReceiver, forced_door_site

pytestmark = [pytest.mark.broker, pytest.mark.faults, pytest.mark.slow]

EVENTS = 5000
KILLS = 10
ONCE = 30  # Doors forced once.
TWICE = 10  # Doors forced twice.
DOORS = ONCE + TWICE
SECRET = b"kill-loop-hook-key"


def forced_plan() -> dict[int, str]:
    """Stream position -> door, for the 50 forced events, spread over the whole stream."""
    doors = [f"d{i}" for i in range(DOORS)] + [f"d{i}" for i in range(ONCE, DOORS)]
    step = EVENTS // len(doors)
    return {7 + n * step: door for n, door in enumerate(doors)}


PLAN = forced_plan()


def event(i: int) -> str:
    if i in PLAN:
        return json.dumps({"kind": "door.forced", "door": PLAN[i], "dedupe_key": f"k{i}"})
    return json.dumps(
        {
            "kind": "access.granted",
            "door": f"d{i % DOORS}",
            "credential": str(8165537 + i),
            "dedupe_key": f"k{i}",
        }
    )


def site(tmp_path: Path, broker_url: str, hook_port: int) -> Path:
    return forced_door_site(
        tmp_path,
        broker_url=broker_url,
        hook_port=hook_port,
        console_port=free_port(),
        secret=SECRET,
        doors=DOORS,
        name="Kill High",
        client_id="dw-kill-alerts",
        timeout="5s",
    )


def save(figures: dict[str, object]) -> None:
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "reliability-kill-loop-alerts.json").write_text(json.dumps(figures, indent=2))


def kill_repeatedly(daemon, daemon_factory, config, rng, hook):
    """SIGKILL and restart the daemon KILLS times; (last daemon, recovery times, figures)."""
    db = config.parent / "dw.db"
    recoveries: list[float] = []
    at_kill: list[dict[str, int]] = []
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.6))
        at_kill.append(
            {
                "journaled": len(journal_rows(db)),
                "alerts": len(journal_rows(db, "SELECT id FROM alerts")),
                "webhook_requests": len(hook.seen),
            }
        )
        daemon.kill()
        killed = time.monotonic()
        daemon = daemon_factory(config)
        wait_healthy(config, timeout=30)
        recoveries.append(time.monotonic() - killed)
    return daemon, recoveries, at_kill


def test_sigkill_ten_times_with_forced_doors_in_the_stream(broker, daemon_factory, tmp_path):
    """Kill -9 ten times at random moments; afterwards 5,001 events are journaled once, 40
    alerts exist once each with the expected occurrences, and every committed webhook
    delivery has reached the receiver, repeats only under their own key."""
    rng = random.Random(20261129)
    hook_port = free_port()
    # Each answer takes 0.5 s, so kills often land while requests are in flight.
    hook = FaultyReceiver(hook_port, secret=SECRET, mode="slow", slow_s=0.5).start()
    config = site(tmp_path, broker.url, hook_port)
    db = tmp_path / "dw.db"
    daemon = daemon_factory(config)
    wait_healthy(config)
    publisher = Publisher(broker.port)
    done = threading.Event()

    def stream() -> None:
        for i in range(EVENTS):
            publisher.client.publish("site/a/events", event(i), qos=1)
            if i % 50 == 0:
                time.sleep(0.01)
        done.set()

    sender = threading.Thread(target=stream)
    sender.start()
    daemon, recoveries, at_kill = kill_repeatedly(daemon, daemon_factory, config, rng, hook)
    sender.join(60)
    assert done.is_set()
    publisher.client.publish("site/a/events", event(EVENTS), qos=1).wait_for_publish(30)
    publisher.close()
    wait_until(
        lambda: len(journal_rows(db)) == EVENTS + 1, timeout=90, what="every event journaled"
    )
    wait_until(
        lambda: len(journal_rows(db, "SELECT id FROM alerts")) == DOORS,
        timeout=30,
        what="40 alerts",
    )

    def webhook_rows() -> list[tuple[object, ...]]:
        return journal_rows(
            db, "SELECT idempotency_key, alert_id, state FROM outbox WHERE target LIKE 'webhook%'"
        )

    wait_until(
        lambda: (rows := webhook_rows()) and all(r[2] == "sent" for r in rows),
        timeout=60,
        what="every webhook delivery sent",
    )
    wait_until(
        lambda: hook.delivered_keys() >= {str(r[0]) for r in webhook_rows()},
        timeout=30,
        what="every delivery received",
    )

    keys = [row[0] for row in journal_rows(db)]
    assert len(keys) == len(set(keys)) == EVENTS + 1
    alerts = journal_rows(db, "SELECT id, rule, subject, door, occurrences FROM alerts")
    per_door = {str(a[3]): int(str(a[4])) for a in alerts}
    expected = {f"d{i}": 1 for i in range(ONCE)} | {f"d{i}": 2 for i in range(ONCE, DOORS)}
    assert len(alerts) == len({(a[1], a[2]) for a in alerts}) == DOORS, "one alert per door"
    assert per_door == expected, "each forced event counted exactly once"
    rows = webhook_rows()
    committed = {str(r[0]) for r in rows}
    received = hook.delivered_keys()
    assert committed <= received
    assert {str(r[1]) for r in rows} == {str(a[0]) for a in alerts}
    by_key: dict[str, set[str]] = {}
    for hit in hook.seen:
        by_key.setdefault(hit.key, set()).add(hit.alert_id)
    assert all(len(ids) == 1 for ids in by_key.values()), "a key always names one alert"
    assert received <= committed, "nothing delivered that the outbox does not hold"
    assert hook.bad_signatures == 0
    raised = [h for h in hook.acked if h.action == "raised"]
    figures = {
        "scenario": "sigkill x10 during a 5,000-event QoS 1 stream with 50 forced-door events",
        "events_sent": EVENTS + 1,
        "events_journaled": len(keys),
        "events_duplicated": len(keys) - len(set(keys)),
        "events_lost": EVENTS + 1 - len(set(keys)),
        "forced_events": len(PLAN),
        "alerts_expected": DOORS,
        "alerts_raised": len(alerts),
        "alert_occurrences_expected": sum(expected.values()),
        "alert_occurrences_counted": sum(per_door.values()),
        "deliveries_committed": len(committed),
        "deliveries_delivered": len(committed & received),
        "deliveries_raised_delivered": len({h.key for h in raised}),
        "webhook_requests": len(hook.seen),
        "repeat_requests_same_key": len(hook.seen) - len(by_key),
        "kills": KILLS,
        "at_each_kill": at_kill,
        "recovery_s_max": round(max(recoveries), 2),
        "recovery_s_median": round(sorted(recoveries)[len(recoveries) // 2], 2),
    }
    save(figures)
    hook.stop()
    assert daemon.stop() == 0
