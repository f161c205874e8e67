"""MQTT ingest against a real mosquitto: journal before ack, reconnects, restarts, SIGKILL."""

from __future__ import annotations

import json
import signal

import pytest
from conftest import Publisher, journal_rows, wait_healthy, wait_until

pytestmark = pytest.mark.broker


def event(key: str, kind: str = "door.opened") -> str:
    return json.dumps({"kind": kind, "door": "gym", "dedupe_key": key})


def keys(db) -> list[str]:
    return [row[0] for row in journal_rows(db)]


def test_published_events_are_journaled_with_site_door(
    broker, publisher, site_config, daemon_factory, tmp_path
):
    """Each published event is journaled once, with the source door mapped to the site door."""
    config = site_config()
    daemon = daemon_factory(config)
    wait_healthy(config)
    for i in range(20):
        publisher.publish("site/a/events", event(f"k{i}"))
    db = tmp_path / "doorwatch.db"
    wait_until(lambda: len(keys(db)) == 20, what="20 events journaled")
    rows = journal_rows(db, "SELECT kind, source, door, replayed FROM events ORDER BY seq")
    assert rows[0] == ("door.opened", "gen", "gym-east", 0)
    assert sorted(keys(db)) == sorted(f"k{i}" for i in range(20))
    assert daemon.stop() == 0


def test_broker_restart_mid_stream_loses_nothing(broker, site_config, daemon_factory, tmp_path):
    """The broker restarts between two halves of a stream; the daemon reconnects, resubscribes
    and journals every event exactly once."""
    config = site_config()
    daemon_factory(config)
    wait_healthy(config)
    db = tmp_path / "doorwatch.db"
    first = Publisher(broker.port)
    for i in range(300):
        first.publish("site/a/events", event(f"a{i}"))
    first.close()
    broker.restart()
    second = Publisher(broker.port)
    for i in range(300):
        second.publish("site/a/events", event(f"b{i}"))
    second.close()
    wait_until(lambda: len(keys(db)) == 600, timeout=40, what="600 events journaled")
    assert len(set(keys(db))) == 600
    # Reconnected: health is green again and the client connected at least twice.
    wait_healthy(config)


def test_events_published_while_daemon_is_down_arrive_once(
    broker, publisher, site_config, daemon_factory, tmp_path
):
    """The persistent session keeps what arrives while the daemon is stopped: all of it is
    journaled after the restart, exactly once."""
    config = site_config()
    db = tmp_path / "doorwatch.db"
    first = daemon_factory(config)
    wait_healthy(config)
    publisher.publish("site/a/events", event("before"))
    wait_until(lambda: keys(db) == ["before"], what="first event")
    assert first.stop(signal.SIGTERM) == 0
    for i in range(250):
        publisher.publish("site/a/events", event(f"down{i}"))
    daemon_factory(config)
    wait_until(lambda: len(keys(db)) == 251, timeout=30, what="251 events journaled")
    assert sorted(keys(db)) == sorted(["before"] + [f"down{i}" for i in range(250)])


def test_sigkill_with_messages_in_flight_loses_nothing(
    broker, publisher, site_config, daemon_factory, tmp_path
):
    """SIGKILL while thousands of messages are in flight: after a restart every message is
    journaled exactly once (the broker redelivers what was not acknowledged)."""
    config = site_config()
    db = tmp_path / "doorwatch.db"
    daemon = daemon_factory(config)
    wait_healthy(config)
    total = 3000
    for i in range(total):
        publisher.client.publish("site/a/events", event(f"m{i}"), qos=1)
        if i == total // 3:
            # Kill as soon as the daemon has journaled part of the stream.
            wait_until(lambda: len(keys(db)) > 50, what="some events journaled")
            daemon.kill()
    # Every PUBACK from the broker means it holds the message for the daemon's session.
    publisher.client.publish("site/a/events", event("last"), qos=1).wait_for_publish(30)
    journaled_at_kill = len(keys(db))
    assert 0 < journaled_at_kill < total + 1
    restarted = daemon_factory(config)
    wait_until(lambda: len(keys(db)) == total + 1, timeout=60, what="every event journaled")
    assert len(set(keys(db))) == total + 1
    assert restarted.stop() == 0


def test_mqtt_3_1_1_session_also_keeps_what_arrives_while_down(
    broker, publisher, site_config, daemon_factory, tmp_path
):
    """With protocol 3.1.1 (clean_session=False) the broker also queues for a stopped daemon."""
    config = site_config()
    config.write_text(
        config.read_text().replace("keepalive: 5}", 'keepalive: 5, protocol: "3.1.1"}')
    )
    db = tmp_path / "doorwatch.db"
    first = daemon_factory(config)
    wait_healthy(config)
    assert first.stop() == 0
    for i in range(50):
        publisher.publish("site/a/events", event(f"v311-{i}"))
    daemon_factory(config)
    wait_until(lambda: len(keys(db)) == 50, what="50 events journaled")
