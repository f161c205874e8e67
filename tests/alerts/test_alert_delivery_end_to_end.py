"""Alerts from door event to receiver, through the real broker, rules, store and outbox.

``doorwatch run`` runs as a subprocess so it can be SIGKILLed; the webhook receiver is a small
threaded HTTP server so the test can wait on it with plain blocking calls.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as paho
import pytest
from conftest import free_port, journal_rows, wait_healthy, wait_until
from paho.mqtt.enums import CallbackAPIVersion

pytestmark = pytest.mark.broker


@dataclass
class Request:
    key: str
    action: str
    alert_id: str
    rule: str


@dataclass
class WebhookReceiver:
    """Records each completed POST; while ``hang`` is set it reads the body and never answers."""

    port: int
    hang: threading.Event = field(default_factory=threading.Event)
    started: list[Request] = field(default_factory=list)
    completed: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = Request(
                    self.headers["Idempotency-Key"],
                    body["action"],
                    body["alert"]["id"],
                    body["alert"]["rule"],
                )
                receiver.started.append(request)
                if receiver.hang.is_set():
                    time.sleep(30)  # The daemon is killed while it waits for this answer.
                    return
                receiver.completed.append(request)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver():
    made: list[WebhookReceiver] = []

    def make(port: int) -> WebhookReceiver:
        r = WebhookReceiver(port)
        r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def forced(key: str, door: str = "gym") -> str:
    return json.dumps({"kind": "door.forced", "door": door, "dedupe_key": key})


ALERT_SITE = """
rules: [{type: door_forced_open}]
notify:
  webhooks: [{url: "http://127.0.0.1:%d/hook", name: soc, timeout: 60s}]
"""


def alert_rows(db) -> list[tuple[object, ...]]:
    return journal_rows(db, "SELECT id, rule, subject, occurrences FROM alerts")


def test_alert_committed_then_daemon_killed_mid_send_is_delivered_after_restart(
    site_config, daemon_factory, publisher, receiver, tmp_path
):
    """The alert and its delivery are committed; the daemon is SIGKILLed while the webhook
    request is in flight. After a restart the delivery is sent again with the same
    idempotency key, and the alert exists once."""
    port = free_port()
    config = site_config(ALERT_SITE % port)
    db = tmp_path / "doorwatch.db"
    hook = receiver(port)
    hook.hang.set()
    daemon = daemon_factory(config)
    wait_healthy(config)

    publisher.publish("site/a/events", forced("f1"))
    wait_until(lambda: hook.started, what="the webhook request to start")
    (row,) = alert_rows(db)
    assert row[1:] == ("door_forced_open", "door:gym-east", 1)
    daemon.kill()
    hook.hang.clear()

    daemon_factory(config)
    wait_until(lambda: hook.completed, timeout=30, what="delivery after restart")
    assert hook.completed[0].key == hook.started[0].key
    assert hook.completed[0].alert_id == row[0]
    assert {r.key for r in hook.started} == {hook.started[0].key}, "one transition, one key"
    assert alert_rows(db) == [row]
    # The daemon marks a delivery sent once the receiver's answer is back: a moment after the
    # receiver has recorded it.
    wait_until(
        lambda: (
            [s for _, s in journal_rows(db, "SELECT target, state FROM outbox")] == ["sent", "sent"]
        ),  # MQTT, webhook
        what="both deliveries marked sent",
    )


def test_receiver_down_then_up_gets_every_alert_once_per_key(
    site_config, daemon_factory, publisher, receiver, tmp_path
):
    """Alerts raised while the receiver is down are all delivered after it comes up; any
    repeat carries the key of the delivery it repeats."""
    port = free_port()
    config = site_config(ALERT_SITE % port)
    db = tmp_path / "doorwatch.db"
    daemon_factory(config)
    wait_healthy(config)
    doors = ["gym", "main"]
    for index, door in enumerate(doors):
        publisher.publish("site/a/events", forced(f"f{index}", door))
    wait_until(lambda: len(alert_rows(db)) == 2, what="two alerts stored")
    time.sleep(1.0)  # A failed attempt or two while nobody listens.
    hook = receiver(port)
    wait_until(lambda: len({r.alert_id for r in hook.completed}) == 2, timeout=60, what="both")
    keys = [r.key for r in hook.completed]
    assert len(set(keys)) == 2
    ids = {r[0] for r in alert_rows(db)}
    assert {r.alert_id for r in hook.completed} == ids


def test_mqtt_subscriber_receives_published_alerts(site_config, daemon_factory, publisher, broker):
    """A subscriber on doorwatch/<site>/alerts/# gets the alert JSON at QoS 1, retained while
    it is open."""
    config = site_config("rules: [{type: door_forced_open}]\n")
    daemon_factory(config)
    wait_healthy(config)
    got: list[tuple[str, dict[str, object], bool]] = []
    subscriber = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:6]}")
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.on_message = lambda _c, _u, m: got.append((m.topic, json.loads(m.payload), m.retain))
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("doorwatch/+/alerts/#", qos=1)
    subscriber.loop_start()
    try:
        assert subscribed.wait(5)
        publisher.publish("site/a/events", forced("m1"))
        wait_until(lambda: got, what="an alert on MQTT")
        topic, payload, _ = got[0]
        alert = payload["alert"]
        assert topic == f"doorwatch/test-high/alerts/{alert['id']}"
        assert alert["rule"] == "door_forced_open"
        assert alert["door"] == "gym-east"
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    # A late subscriber still learns of the open alert (retained).
    late: list[str] = []
    again = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"late-{uuid.uuid4().hex[:6]}")
    again.on_message = lambda _c, _u, m: late.append(m.topic)
    again.connect("127.0.0.1", broker.port)
    again.subscribe("doorwatch/+/alerts/#", qos=1)
    again.loop_start()
    try:
        wait_until(lambda: late, timeout=5, what="the retained alert")
        assert late[0] == topic
    finally:
        again.loop_stop()
        again.disconnect()
