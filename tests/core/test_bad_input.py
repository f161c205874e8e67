"""Bad input on the wire: one log line and a metric per kind, dead-lettered, daemon keeps going."""

from __future__ import annotations

import json

import pytest
from conftest import console_url, http_get, journal_rows, wait_healthy, wait_until

pytestmark = pytest.mark.broker

BAD = {
    "malformed": b"{not json",
    "wrong_type": json.dumps({"kind": 5, "door": ["gym"]}).encode(),
    "too_large": b'{"kind": "door.opened", "pad": "' + b"x" * (1024 * 1024) + b'"}',
    "too_deep": b"[" * 100_000 + b"]" * 100_000,
}


def dead_letter_lines(log: str) -> list[dict]:
    lines = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "message dead-lettered":
            lines.append(record)
    return lines


def test_bad_payloads_are_dead_lettered_logged_once_and_counted(
    broker, publisher, site_config, daemon_factory, tmp_path
):
    """Two of each bad payload kind: each kind is logged once, counted twice, stored twice as a
    dead letter; a good event after them is still journaled and the daemon stays healthy."""
    config = site_config()
    daemon = daemon_factory(config)
    wait_healthy(config)
    for _ in range(2):
        for payload in BAD.values():
            publisher.publish("site/a/events", payload)
    publisher.publish("unknown/topic/events", b"{}")  # Not subscribed: never delivered.
    publisher.publish(
        "site/a/events", json.dumps({"kind": "door.opened", "door": "gym", "dedupe_key": "ok"})
    )
    db = tmp_path / "doorwatch.db"
    wait_until(lambda: journal_rows(db) == [("ok",)], what="the good event journaled")
    dead = journal_rows(db, "SELECT kind, size FROM dead_letters ORDER BY id")
    assert sorted(kind for kind, _ in dead) == sorted([*BAD, *BAD])
    too_large = [size for kind, size in dead if kind == "too_large"]
    assert too_large == [len(BAD["too_large"])] * 2
    # Stored payloads are capped: a dead letter never keeps a megabyte.
    stored = journal_rows(db, "SELECT max(length(payload)) FROM dead_letters")[0][0]
    assert stored <= 16 * 1024

    logged = dead_letter_lines(daemon.logs())
    assert sorted(r["reason"] for r in logged) == sorted(BAD)
    assert all(r["source"] == "gen" for r in logged)

    status, body = http_get(console_url(config) + "/metrics")
    assert status == 200
    text = body.decode()
    for kind in BAD:
        assert f'doorwatch_decode_failures_total{{reason="{kind}",source="gen"}} 2.0' in text
    assert http_get(console_url(config) + "/healthz")[0] == 200
    assert daemon.stop() == 0


def test_message_on_a_topic_no_controller_claims_is_dead_lettered(
    broker, publisher, site_config, daemon_factory, tmp_path
):
    """A persistent session can deliver topics an older config subscribed to; such a message is
    dead-lettered as unknown_topic, not silently dropped."""
    old = site_config(
        client_id="dw-topics",
        controllers="""
            controllers:
              - {id: gen, codec: generic, topics: ["site/+/events", "legacy/#"]}
        """,
    )
    first = daemon_factory(old)
    wait_healthy(old)
    assert first.stop() == 0
    publisher.publish("legacy/door", json.dumps({"kind": "door.opened"}))
    new = site_config(client_id="dw-topics")
    daemon_factory(new)
    db = tmp_path / "doorwatch.db"
    wait_until(
        lambda: (
            journal_rows(db, "SELECT kind, topic FROM dead_letters")
            == [("unknown_topic", "legacy/door")]
        ),
        what="unknown_topic dead letter",
    )
