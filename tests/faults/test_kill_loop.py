"""SIGKILL at random points of a 5,000-event QoS 1 stream, ten times: nothing lost or doubled."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, Publisher, journal_rows, wait_healthy, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.faults, pytest.mark.slow]

EVENTS = 5000
KILLS = 10


def event(i: int) -> str:
    return json.dumps(
        {
            "kind": "access.granted",
            "door": "gym",
            "credential": str(8165537 + i),
            "dedupe_key": f"k{i}",
        }
    )


def test_sigkill_ten_times_during_a_5000_event_stream(
    broker, site_config, daemon_factory, tmp_path
):
    """Kill -9 the daemon ten times at random moments while 5,000 events stream in; after
    the last restart every event is journaled exactly once."""
    rng = random.Random(20261128)
    config = site_config(client_id="dw-kill")
    db = tmp_path / "doorwatch.db"
    daemon = daemon_factory(config)
    wait_healthy(config)
    publisher = Publisher(broker.port)
    done = threading.Event()

    def stream() -> None:
        for i in range(EVENTS):
            publisher.client.publish("site/a/events", event(i), qos=1)
            if i % 50 == 0:
                time.sleep(0.01)  # About 5,000 events/s: a busy site at its worst.
        done.set()

    sender = threading.Thread(target=stream)
    sender.start()
    recoveries = []
    journaled_at_kill = []
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.4))
        journaled_at_kill.append(len(journal_rows(db)))
        daemon.kill()
        killed = time.monotonic()
        daemon = daemon_factory(config)
        wait_healthy(config, timeout=30)
        recoveries.append(time.monotonic() - killed)
    sender.join(60)
    assert done.is_set()
    publisher.client.publish("site/a/events", event(EVENTS), qos=1).wait_for_publish(30)
    publisher.close()
    wait_until(
        lambda: len(journal_rows(db)) == EVENTS + 1, timeout=90, what="every event journaled"
    )
    keys = [row[0] for row in journal_rows(db)]
    assert len(keys) == len(set(keys)) == EVENTS + 1
    figures = {
        "scenario": "sigkill x10 during a 5,000-event QoS 1 stream",
        "sent": EVENTS + 1,
        "journaled": len(keys),
        "duplicated": len(keys) - len(set(keys)),
        "lost": EVENTS + 1 - len(set(keys)),
        "kills": KILLS,
        "journaled_at_each_kill": journaled_at_kill,
        "recovery_s_max": round(max(recoveries), 2),
        "recovery_s_median": round(sorted(recoveries)[len(recoveries) // 2], 2),
    }
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    Path(out / "reliability-kill-loop.json").write_text(json.dumps(figures, indent=2))
    assert daemon.stop() == 0
