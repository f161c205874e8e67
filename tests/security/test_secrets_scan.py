"""Secrets and card numbers never leave the daemon through its logs, /metrics or the API.

A daemon (subprocess, real mosquitto) is given every kind of secret the config knows (MQTT
password file, webhook HMAC key file, an Apprise URL with a password in a url_file, a console
password) and a stream of events carrying full card numbers: grants, denials, a forced door
that raises an alert, a dead-lettered payload, an unknown topic. Then every log line, the
/metrics page and every GET endpoint the OpenAPI document lists (as an SRO, with real alert
ids filled in) are scanned for the secret strings and for any full card number. The webhook
receiver verifies the HMAC of every delivery with the key from the key file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest
from conftest import free_port, journal_rows, wait_healthy, wait_until

pytestmark = pytest.mark.broker

MQTT_PASSWORD = "mqtt-Pa55-7c1e0d"
HOOK_KEY = "hook-K3y-91ab2f"
APPRISE_PASSWORD = "appr1se-Pa55-4d2"
CONSOLE_PASSWORD = "console-Pa55-word-0e"
CARDS = ["4111111111111111", "8165537123", "405419896777", "5500005555555559"]
SECRETS = [MQTT_PASSWORD, HOOK_KEY, APPRISE_PASSWORD, CONSOLE_PASSWORD]


class SigningReceiver:
    """Accepts webhook POSTs and checks each HMAC-SHA256 signature against the key."""

    def __init__(self, port: int, key: bytes) -> None:
        self.good: list[dict[str, object]] = []
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-Doorwatch-Signature", "")
                if hmac.compare_digest(expected, signature):
                    receiver.good.append(json.loads(body))
                    status = 200
                else:
                    receiver.bad += 1
                    status = 401
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def leaks(text: str) -> list[str]:
    """Secrets and full card numbers found in ``text``."""
    return [s for s in SECRETS + CARDS if s in text]


def config_for(tmp_path, broker, hook_port: int, console_port: int):
    (tmp_path / "mqtt.pass").write_text(MQTT_PASSWORD + "\n")
    (tmp_path / "hook.key").write_text(HOOK_KEY)
    # Nothing listens on this port: Apprise deliveries fail and are logged as failures.
    (tmp_path / "apprise.url").write_text(
        f"json://doorwatch:{APPRISE_PASSWORD}@127.0.0.1:{free_port()}/alerts\n"
    )
    path = tmp_path / "dw.yaml"
    path.write_text(
        textwrap.dedent(f"""
        site: {{name: Secret High, timezone: America/Chicago}}
        mqtt: {{url: "{broker.url}", client_id: dw-secrets, keepalive: 5, username: dw,
                password_file: {tmp_path / "mqtt.pass"}}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
        controllers:
          - {{id: gen, codec: generic, topics: ["site/+/events"], doors: {{"gym": gym-east}}}}
        rules:
          - {{type: door_forced_open}}
          - {{type: access_denied_burst, count: 2, window: 60s}}
        notify:
          webhooks: [{{url: "http://127.0.0.1:{hook_port}/hook", name: soc,
                       secret_file: {tmp_path / "hook.key"}}}]
          apprise: [{{url_file: {tmp_path / "apprise.url"}, min_severity: info}}]
        console: {{listen: "127.0.0.1:{console_port}"}}
        """).lstrip()
    )
    return path


def add_sro(config) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "doorwatch",
            "user",
            "add",
            "sam",
            "--role",
            "sro",
            "-c",
            str(config),
        ],
        input=CONSOLE_PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not leaks(result.stdout + result.stderr)


async def scan_http(base: str, alert_ids: list[str]) -> dict[str, str]:
    """Every GET endpoint's body (as an SRO), /metrics and /healthz, by path."""
    bodies: dict[str, str] = {}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"name": "sam", "password": CONSOLE_PASSWORD}
        async with http.post(base + "/api/v1/login", json=login) as r:
            assert r.status == 200
            bodies["login"] = await r.text()
        async with http.get(base + "/api/v1/openapi.json") as r:
            document = await r.json()
        paths = ["/metrics", "/healthz", "/api/v1/events?limit=1000"]
        for path, operations in document["paths"].items():
            if "get" not in operations or path.endswith("/stream"):
                continue
            if "{id}" in path:
                paths += [path.replace("{id}", alert_id) for alert_id in alert_ids]
            elif "{" not in path:
                paths.append(path)
        for path in paths:
            async with http.get(base + path) as r:
                bodies[path] = await r.text()
    return bodies


async def test_no_secret_or_card_number_leaves_through_logs_metrics_or_api(
    broker, publisher, daemon_factory, tmp_path
):
    """Drive traffic that touches every secret and card number, then scan everything the
    daemon says: nothing matches; webhook deliveries carry a valid HMAC."""
    hook_port, console_port = free_port(), free_port()
    hook = SigningReceiver(hook_port, HOOK_KEY.encode())
    config = config_for(tmp_path, broker, hook_port, console_port)
    add_sro(config)
    daemon = daemon_factory(config)
    wait_healthy(config)
    db = tmp_path / "dw.db"
    sent = 0
    for n, card in enumerate(CARDS):
        for kind in ("access.granted", "access.denied", "access.denied"):
            body = {"kind": kind, "door": "gym", "credential": card, "holder": "Ann Lee"}
            publisher.publish("site/a/events", json.dumps({**body, "dedupe_key": f"c{sent}"}))
            sent += 1
        # A message that is dead-lettered (unknown field), with the card in it.
        bad = {"kind": "access.granted", "credential": card, "reason": f"card {card}", "x": n}
        publisher.publish("site/a/events", json.dumps(bad))
    publisher.publish("site/a/events", json.dumps({"kind": "door.forced", "door": "gym"}))
    sent += 1
    publisher.publish("site/zz/other", b"card " + CARDS[0].encode())  # No controller claims it.
    wait_until(lambda: len(journal_rows(db)) == sent, what="every event journaled")
    wait_until(lambda: len(journal_rows(db, "SELECT id FROM alerts")) >= 2, what="alerts")
    wait_until(lambda: len(hook.good) >= 2, timeout=30, what="signed webhook deliveries")
    wait_until(
        lambda: "alert delivery failed" in daemon.logs(), timeout=30, what="an Apprise failure"
    )
    alert_ids = [str(r[0]) for r in journal_rows(db, "SELECT id FROM alerts")]
    bodies = await scan_http(f"http://127.0.0.1:{console_port}", alert_ids)
    hook.stop()
    assert daemon.stop() == 0
    stored = [
        json.loads(bytes(row[0]))  # type: ignore[arg-type]
        for row in journal_rows(db, "SELECT body FROM events")
    ]
    assert any(body.get("credential") for body in stored), "the events carried credentials"
    found = {where: leaks(text) for where, text in bodies.items() if leaks(text)}
    found |= {"log": leaks(daemon.logs())} if leaks(daemon.logs()) else {}
    found |= {"webhook": leaks(json.dumps(hook.good))} if leaks(json.dumps(hook.good)) else {}
    found |= {"events table": leaks(json.dumps(stored))} if leaks(json.dumps(stored)) else {}
    assert found == {}
    assert hook.bad == 0
    # The scan looked at real content: the card's last digits and the alerts are there.
    assert "1111" in bodies["/api/v1/events?limit=1000"]
    assert all(alert_id in bodies["/api/v1/alerts"] for alert_id in alert_ids)
    assert "doorwatch_events_total" in bodies["/metrics"]
