"""Network stalls and dropped connections between the daemon and the broker lose nothing."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from conftest import free_port, journal_rows, wait_healthy, wait_until
from proxy import StallProxy

pytestmark = [pytest.mark.broker, pytest.mark.faults]


def config_via(tmp_path, proxy_port):
    path = tmp_path / "dw.yaml"
    path.write_text(
        textwrap.dedent(f"""
        site: {{name: Stall High}}
        mqtt: {{url: "mqtt://127.0.0.1:{proxy_port}", client_id: dw-stall, keepalive: 5, reconnect_max: 2s}}
        storage: {{path: {tmp_path / "dw.db"}}}
        controllers: [{{id: gen, codec: generic, topics: ["site/#"]}}]
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """)
    )
    return path


def event(key):
    return json.dumps({"kind": "access.granted", "door": "main", "dedupe_key": key})


def keys(tmp_path):
    return {row[0] for row in journal_rows(tmp_path / "dw.db")}


def test_stalled_link_is_detected_by_keepalive_and_nothing_is_lost(
    broker, publisher, tmp_path, daemon_factory
):
    """The link stalls for longer than 1.5x keepalive: the daemon notices the dead connection,
    reconnects once the network is back, and journals every event published meanwhile."""
    proxy = StallProxy(broker.port).start()
    config = config_via(tmp_path, proxy.port)
    daemon = daemon_factory(config)
    wait_healthy(config)
    for i in range(100):
        publisher.publish("site/main", event(f"s{i}"))
    proxy.pause()
    for i in range(100, 300):
        publisher.publish("site/main", event(f"s{i}"))
    wait_until(
        lambda: "mqtt disconnected" in daemon.logs() or "mqtt connect failed" in daemon.logs(),
        timeout=20,
        what="dead link noticed",
    )
    proxy.drop()
    proxy.resume()
    wait_until(lambda: len(keys(tmp_path)) == 300, timeout=40, what="300 events journaled")
    assert keys(tmp_path) == {f"s{i}" for i in range(300)}
    proxy.stop()


def test_connections_dropped_again_and_again_mid_stream(
    broker, publisher, tmp_path, daemon_factory
):
    """The link is cut five times while 1,000 events stream: each is journaled exactly once."""
    proxy = StallProxy(broker.port).start()
    config = config_via(tmp_path, proxy.port)
    daemon_factory(config)
    wait_healthy(config)
    for burst in range(5):
        for i in range(200):
            publisher.client.publish("site/main", event(f"d{burst}-{i}"), qos=1)
        time.sleep(0.02)  # Let part of the burst reach the daemon, then cut the link under it.
        connections = proxy.connections
        proxy.drop()
        wait_until(lambda c=connections: proxy.connections > c, timeout=20, what="reconnected")
    publisher.client.publish("site/main", event("end"), qos=1).wait_for_publish(30)
    wait_until(lambda: len(keys(tmp_path)) == 1001, timeout=60, what="1001 events journaled")
    assert proxy.connections >= 6
    proxy.stop()
