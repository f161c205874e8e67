"""A webhook receiver that misbehaves on demand and checks every request's HMAC signature.

A threaded HTTP server, so tests can wait on it with plain blocking calls while the daemon
runs in a subprocess. ``mode`` decides how each request is answered:

* ``ok``: 200 at once;
* ``slow``: 200 after ``slow_s`` seconds (longer than the daemon's webhook timeout);
* ``500``: an HTTP 500;
* ``hang``: read the request, never answer (until the test ends);
* ``close``: read the request, close the connection without a word.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Hit:
    """One request as the receiver saw it."""

    key: str
    alert_id: str
    action: str
    rule: str
    signed_ok: bool
    at: float


@dataclass
class FaultyReceiver:
    port: int
    secret: bytes | None = None
    mode: str = "ok"
    slow_s: float = 4.0
    seen: list[Hit] = field(default_factory=list)
    acked: list[Hit] = field(default_factory=list)
    bad_signatures: int = 0
    server: ThreadingHTTPServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FaultyReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.handle(self, body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        signed_ok = True
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            got = request.headers.get("X-Doorwatch-Signature", "")
            signed_ok = hmac.compare_digest(expected, got)
        data = json.loads(body)
        hit = Hit(
            request.headers.get("Idempotency-Key", ""),
            data["alert"]["id"],
            data["action"],
            data["alert"]["rule"],
            signed_ok,
            time.monotonic(),
        )
        mode = self.mode
        with self._lock:
            self.seen.append(hit)
            if not signed_ok:
                self.bad_signatures += 1
        if not signed_ok:
            self._answer(request, 401)
            return
        if mode == "hang":
            self._stop.wait(120)
            request.close_connection = True
            return
        if mode == "close":
            request.close_connection = True
            return
        if mode == "500":
            self._answer(request, 500)
            return
        if mode == "slow":
            self._stop.wait(self.slow_s)
        with self._lock:
            self.acked.append(hit)
        self._answer(request, 200)

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Length", "0")
            request.end_headers()
        except OSError:
            pass  # The daemon gave up waiting and closed the connection.

    def delivered_keys(self) -> set[str]:
        with self._lock:
            return {hit.key for hit in self.acked}

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def forced_door_site(
    tmp_path: Path,
    *,
    broker_url: str,
    hook_port: int,
    console_port: int,
    secret: bytes,
    doors: int,
    name: str,
    client_id: str,
    timeout: str,
) -> Path:
    """A daemon config: ``doors`` doors d0.. on a generic controller, the forced-door rule, and
    a signed webhook to ``hook_port``; no reminders, so every request is a transition."""
    (tmp_path / "hook.key").write_bytes(secret)
    mapping = ", ".join(f'"d{i}": d{i}' for i in range(doors))
    door_lines = "".join(f"\n  - {{id: d{i}, name: Door {i}}}" for i in range(doors))
    path = tmp_path / "dw.yaml"
    path.write_text(
        textwrap.dedent(f"""
        site: {{name: {name}}}
        mqtt: {{url: "{broker_url}", client_id: {client_id}, keepalive: 5}}
        storage: {{path: {tmp_path / "dw.db"}}}
        console: {{listen: "127.0.0.1:{console_port}"}}
        controllers:
          - {{id: gen, codec: generic, topics: ["site/#"], doors: {{{mapping}}}}}
        rules: [{{type: door_forced_open}}]
        notify:
          webhooks: [{{url: "http://127.0.0.1:{hook_port}/hook", name: soc, timeout: {timeout},
                       secret_file: {tmp_path / "hook.key"}}}]
          remind_critical_every: null
        """).lstrip()
        + "doors:"
        + door_lines
        + "\n"
    )
    return path
