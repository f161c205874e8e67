"""The peer: the same forced-door and held-open logic in Node-RED, on the same broker and webhook.

Node-RED (npm package ``node-red``) is installed into a temporary directory, or reused from
``$DOORWATCH_BENCH_NODERED`` when that names a directory holding ``node_modules/node-red``.
The flow is ``bench/nodered-flow.json``; its broker port, client id and webhook URL come from
the environment. The function node also counts messages and reports a drain's first and last
arrival times to the webhook, which is how its ingest rate is measured from the inside.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from harness import (
    Message,
    Publisher,
    SiteSpec,
    WebhookReceiver,
    proc_cpu_seconds,
    proc_rss_mb,
    summary_ms,
)

BENCH = Path(__file__).resolve().parent
FLOW = BENCH / "nodered-flow.json"
SETTINGS = """\
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %d,
    flowFile: "flow.json",
    credentialSecret: false,
    httpAdminRoot: false,
    logging: {console: {level: "warn", metrics: false, audit: false}},
    functionExternalModules: false,
};
"""


@dataclass
class NodeRed:
    """One Node-RED install and the processes the bench runs from it."""

    work: Path
    red_js: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def prepare(cls, work: Path) -> NodeRed | str:
        """Install Node-RED, or say why the peer is skipped."""
        node, npm = shutil.which("node"), shutil.which("npm")
        if node is None or npm is None:
            return "peer skipped: Node.js (node and npm) not found on PATH"
        cached = os.environ.get("DOORWATCH_BENCH_NODERED")
        prefix = Path(cached) if cached else work / "npm"
        red_js = prefix / "node_modules" / "node-red" / "red.js"
        if not red_js.exists():
            prefix.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "node-red"],
                cwd=prefix,
                capture_output=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0 or not red_js.exists():
                return "peer skipped: npm install node-red failed: " + done.stderr.decode()[-300:]
        return cls(work, red_js)

    def version(self) -> str:
        package = self.red_js.parent / "package.json"
        return str(orjson.loads(package.read_bytes())["version"])

    def start(self, port: int, receiver: WebhookReceiver, client_id: str) -> float:
        """Start Node-RED; seconds until its flow answers a ping over MQTT."""
        user = self.work / "userdir"
        user.mkdir(exist_ok=True)
        shutil.copy(FLOW, user / "flow.json")
        (user / "settings.js").write_text(SETTINGS % _free_port())
        env = {
            **os.environ,
            "MQTT_PORT": str(port),
            "MQTT_CLIENT_ID": client_id,
            "WEBHOOK_URL": receiver.url,
            "TIMER_HELD_S": "1",
        }
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                shutil.which("node") or "node",
                str(self.red_js),
                "--userDir",
                str(user),
                "--settings",
                str(user / "settings.js"),
            ],
            env=env,
            stdout=(self.work / "nodered.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        pub = Publisher(port)
        try:
            seen = len(receiver.reports)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(r["action"] == "pong" for r in receiver.reports[seen:]):
                    return time.perf_counter() - started
                if self.process.poll() is not None:
                    raise RuntimeError(f"Node-RED exited; see {self.work / 'nodered.log'}")
                pub.publish(Message("nodered-bench/control", b'{"cmd": "ping"}'))
                time.sleep(0.25)
            raise TimeoutError("Node-RED flow never answered")
        finally:
            pub.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def measure(self, port: int, messages: list[Message], *, probes: int) -> dict[str, Any]:
        """Alert latency idle and under load, held-open lateness, backlog drain rate."""
        import run  # the probe and load helpers

        receiver = WebhookReceiver()
        receiver.start()
        client_id = f"bench-nodered-{uuid.uuid4().hex[:6]}"
        spec = SiteSpec(probe_doors=2 * probes, timer_doors=200, held_open_after=1.0)
        results: dict[str, Any] = {"version": self.version()}
        try:
            results["ready_s"] = round(self.start(port, receiver, client_id), 3)
            p = run.Probes(port, spec)
            p.prime_timer_doors()
            time.sleep(1.0)
            p.run(range(probes), range(0), rate=50)
            idle = run.collect(receiver, "raised", "door_forced_open", _refs(p.sent, spec))
            results["idle"] = summary_ms(idle)
            p.sent.clear()
            load_seconds = probes / 50 + 8
            load = run.start_load(port, rate=1000, seconds=load_seconds)
            time.sleep(2.0)
            assert self.process is not None
            cpu0, t0 = proc_cpu_seconds(self.process.pid), time.perf_counter()
            p.run(range(probes, 2 * probes), range(spec.timer_doors), rate=50)
            loaded = run.collect(receiver, "raised", "door_forced_open", _refs(p.sent, spec))
            late = run.collect(
                receiver,
                "raised",
                "door_held_open",
                {f"bench-timer-{k.split('-')[1]}": v for k, v in p.opened.items()},
                offset=spec.held_open_after,
            )
            cpu1, t1 = proc_cpu_seconds(self.process.pid), time.perf_counter()
            run.finish_load(load, timeout=load_seconds + 30)
            p.close()
            results["load"] = summary_ms(loaded)
            results["load"]["cpu_share"] = round((cpu1 - cpu0) / (t1 - t0), 2)
            results["timer"] = summary_ms(late)
            results["rss_mb"] = round(proc_rss_mb(self.process.pid), 1)
            results["ingest_eps"] = round(self.drain(port, receiver, client_id, messages))
        finally:
            self.stop()
            receiver.stop()
        return results

    def drain(
        self, port: int, receiver: WebhookReceiver, client_id: str, messages: list[Message]
    ) -> float:
        """The same QoS 1 backlog doorwatch drained, counted inside the flow."""
        self.stop()  # The session stays; the broker queues for it.
        pub = Publisher(port)
        target = {"cmd": "reset", "target": len(messages)}
        pub.publish(Message("nodered-bench/control", orjson.dumps(target)))
        pub.publish_all(messages)
        pub.close()
        seen = len(receiver.reports)
        self.start(port, receiver, client_id)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            reports = [r for r in receiver.reports[seen:] if r["action"] == "report"]
            if reports:
                r = reports[0]
                return float((r["count"] - 1) / max(1e-3, (r["last"] - r["first"]) / 1000))
            time.sleep(0.1)
        raise TimeoutError("Node-RED never reported the drain")


def _refs(sent: dict[str, float], spec: SiteSpec) -> dict[str, float]:
    """probe-<i> -> the uhppoted door reference Node-RED reports (it has no door table)."""
    out = {}
    for key, at in sent.items():
        device, door = spec.probe_ref(int(key.split("-")[1]))
        out[f"{device}:{door}"] = at
    return out


def _free_port() -> int:
    from harness import free_port

    return free_port()
