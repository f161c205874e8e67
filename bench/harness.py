"""Shared parts of the benchmark: broker, daemon, traffic, webhook receiver, process sampling."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from doorwatch.adapters.mqtt.simulator import Step, UhppotedFormat, Zigbee2MqttFormat

REPO = Path(__file__).resolve().parent.parent
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WEBHOOK_KEY = "bench-webhook-key"

# Device serials of the simulated site. Each workload has its own controllers, so uhppoted
# event ids stay strictly increasing per controller (lower ids would be taken for backlog).
LOAD_DEVICE_BASE = 423_000_000  # background swipes
PROBE_DEVICE_BASE = 425_000_000  # forced-door probes, one door each
DRAIN_DEVICE_BASE = 405_419_896  # the backlog drained for the ingest ceiling


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports."""
    for _ in range(200):
        base = free_port()
        if base + count > 65000:
            continue
        ok = True
        for port in range(base, base + count):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free ports")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(port)


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank), or NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(values: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/p99/max of latencies given in seconds, in milliseconds."""
    return {
        "n": len(values),
        "p50": round(pct(values, 50) * 1000, 1),
        "p95": round(pct(values, 95) * 1000, 1),
        "p99": round(pct(values, 99) * 1000, 1),
        "max": round(max(values) * 1000, 1) if values else float("nan"),
    }


# ----- processes -----


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (children excluded)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def machine_cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, to report how loaded it was."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return float(sum(parts) - idle), float(sum(parts))


@dataclass
class Broker:
    """A private mosquitto on a free port: unlimited queues, 20 in flight, no persistence."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            textwrap.dedent(f"""
                listener {self.port} 127.0.0.1
                allow_anonymous true
                user {pwd.getpwuid(os.getuid()).pw_name}
                persistence false
                max_queued_messages 0
                max_inflight_messages 20
                log_dest none
            """)
        )
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


# ----- traffic: the project's own controller simulators render every message -----


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes


class Traffic:
    """Realistic uhppoted-mqtt and zigbee2mqtt messages from the controller simulator."""

    def __init__(self) -> None:
        self.uhppoted = UhppotedFormat("uhppoted/gateway")
        self.zigbee = Zigbee2MqttFormat("zigbee2mqtt")

    def uhppoted_msg(self, action: str, device: int, door: int, card: int | None = None) -> Message:
        step = Step(at=0, action=action, door=f"{device}:{door}", card=card)  # type: ignore[arg-type]
        (pub,) = self.uhppoted.render(step, _now())
        return Message(pub.topic, pub.payload)

    def contact_msg(self, sensor: str, *, closed: bool) -> Message:
        step = Step(at=0, action="close" if closed else "open", device=sensor)
        (pub,) = self.zigbee.render(step, _now())
        return Message(pub.topic, pub.payload)

    def mixed(self, count: int, *, device_base: int = DRAIN_DEVICE_BASE) -> list[Message]:
        """A site's everyday traffic: card swipes (3 in 4, a few denied), contact reports."""
        out = []
        for i in range(count):
            if i % 4 == 3:
                out.append(self.contact_msg(f"bench-sensor-{i % 16}", closed=True))
            else:
                action = "deny" if i % 29 == 0 else "swipe"
                out.append(
                    self.uhppoted_msg(action, device_base + i % 4, 1 + i % 4, 8165537 + i % 500)
                )
        return out


# ----- MQTT helpers -----


def paho_client(client_id: str | None = None, *, v5: bool = True) -> paho.Client:
    return paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"bench-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
    )


class Publisher:
    """Publishes at QoS 1 from this process (its own network thread)."""

    def __init__(self, port: int) -> None:
        self.client = paho_client()
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, message: Message) -> paho.MQTTMessageInfo:
        return self.client.publish(message.topic, message.payload, qos=1)

    def publish_all(self, messages: Sequence[Message], chunk: int = 5000) -> None:
        """A backlog, in chunks (one paho publisher stalls on huge bursts)."""
        for start in range(0, len(messages), chunk):
            infos = [self.publish(m) for m in messages[start : start + chunk]]
            for info in infos:
                info.wait_for_publish(60)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def register_session(port: int, client_id: str, topics: Iterable[str]) -> None:
    """Create a persistent QoS 1 session so the broker queues a backlog for it."""
    done = threading.Event()
    client = paho_client(client_id)
    client.on_subscribe = lambda *_args: done.set()
    props = paho.Properties(paho.PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe([(t, 1) for t in topics])
    done.wait(10)
    client.loop_stop()
    client.disconnect()


# ----- the daemon -----


@dataclass
class SiteSpec:
    """What the simulated site holds; the daemon's config is generated from it."""

    probe_doors: int = 0  # uhppoted doors for forced-door probes, 4 per controller
    timer_doors: int = 0  # zigbee2mqtt contact doors with a short held-open threshold
    load_devices: int = 10  # uhppoted controllers swiping in the background, 4 doors each
    held_open_after: float = 1.0
    webhook_url: str | None = None
    cameras: Sequence[tuple[str, int]] = ()  # (camera id, port)

    def probe_ref(self, index: int) -> tuple[int, int]:
        return PROBE_DEVICE_BASE + index // 4, 1 + index % 4


def site_config(
    spec: SiteSpec, broker_port: int, workdir: Path, console_port: int, client_id: str
) -> str:
    doors: list[str] = []
    uhppoted_map: dict[str, str] = {}
    for d in range(4):
        doors.append(f"  - {{id: drain-{d}, name: Drain door {d}, zone: perimeter}}")
        uhppoted_map[f"{DRAIN_DEVICE_BASE + d}:{1 + d}"] = f"drain-{d}"
    for dev in range(spec.load_devices):
        for door in range(1, 5):
            door_id = f"load-{dev}-{door}"
            doors.append(f"  - {{id: {door_id}, name: Load door {dev}/{door}, zone: main}}")
            uhppoted_map[f"{LOAD_DEVICE_BASE + dev}:{door}"] = door_id
    for i in range(spec.probe_doors):
        device, door = spec.probe_ref(i)
        doors.append(f"  - {{id: probe-{i}, name: Probe door {i}, zone: perimeter}}")
        uhppoted_map[f"{device}:{door}"] = f"probe-{i}"
    zigbee_map = {f"bench-sensor-{i}": f"sensor-door-{i}" for i in range(16)}
    doors.extend(f"  - {{id: sensor-door-{i}, name: Sensor door {i}}}" for i in range(16))
    for i in range(spec.timer_doors):
        zigbee_map[f"bench-timer-{i}"] = f"timer-{i}"
        doors.append(
            f"  - {{id: timer-{i}, name: Timer door {i}, held_open_after: {spec.held_open_after}}}"
        )
    secret = workdir / "webhook.key"
    secret.write_text(WEBHOOK_KEY)
    notify = ""
    if spec.webhook_url:
        notify = f"notify:\n  webhooks: [{{url: {spec.webhook_url!r}, secret_file: {secret}}}]\n"
    cameras = ""
    if spec.cameras:
        password = workdir / "camera.pass"
        password.write_text("admin")
        cameras = "cameras:\n" + "".join(
            f"  - {{id: {cid}, host: 127.0.0.1, port: {port}, username: admin,"
            f" password_file: {password}, snapshot: false}}\n"
            for cid, port in spec.cameras
        )
    return (
        "site: {name: Bench High, timezone: America/Chicago}\n"
        f'mqtt: {{url: "mqtt://127.0.0.1:{broker_port}", client_id: {client_id}}}\n'
        f"storage: {{path: {workdir / 'doorwatch.db'}}}\n"
        "doors:\n" + "\n".join(doors) + "\n"
        "controllers:\n"
        "  - id: uhppote\n"
        "    codec: uhppoted\n"
        '    topics: ["uhppoted/gateway/events/live", "uhppoted/gateway/system"]\n'
        f"    doors: {orjson.dumps(uhppoted_map).decode()}\n"
        "  - id: contacts\n"
        "    codec: zigbee2mqtt\n"
        '    topics: ["zigbee2mqtt/#"]\n'
        f"    doors: {orjson.dumps(zigbee_map).decode()}\n" + cameras + "rules:\n"
        "  - {type: door_held_open}\n"
        "  - {type: door_forced_open, shunt: 10s}\n"
        "  - {type: access_denied_burst, count: 50, window: 10s}\n"
        "  - {type: duress}\n"
        "  - {type: device_offline}\n"
        + ("  - {type: camera_tamper}\n  - {type: camera_offline}\n" if spec.cameras else "")
        + notify
        + f'console: {{listen: "127.0.0.1:{console_port}"}}\n'
        "logging: {level: warning}\n"
    )


class NotifySocket:
    """A systemd-style notify socket: the daemon's READY=1 arrives here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait_ready(self, timeout: float, alive: Callable[[], bool]) -> float:
        """Block until READY=1; return perf_counter() at its arrival."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(0.05)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                if not alive():
                    raise RuntimeError("daemon exited before READY") from None
                continue
            if b"READY=1" in data.split(b"\n"):
                return time.perf_counter()
        raise TimeoutError("no READY=1")

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class Daemon:
    """``doorwatch run`` as systemd would start it (Type=notify), on a generated config."""

    workdir: Path
    broker_port: int
    spec: SiteSpec = field(default_factory=SiteSpec)
    console_port: int = field(default_factory=free_port)
    client_id: str = field(default_factory=lambda: f"bench-doorwatch-{uuid.uuid4().hex[:6]}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "doorwatch.db"

    def start(self, timeout: float = 60.0) -> float:
        """Start and return seconds from process start to READY=1 on $NOTIFY_SOCKET."""
        config = self.workdir / "doorwatch.yaml"
        config.write_text(
            site_config(
                self.spec, self.broker_port, self.workdir, self.console_port, self.client_id
            )
        )
        notify = NotifySocket(self.workdir / "notify.sock")
        env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
        try:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "doorwatch", "run", "-c", str(config)],
                stderr=(self.workdir / "daemon.log").open("ab"),
                env=env,
            )
            process = self.process
            try:
                ready = notify.wait_ready(timeout, lambda: process.poll() is None)
            except RuntimeError:
                raise RuntimeError(
                    "daemon exited; see " + str(self.workdir / "daemon.log")
                ) from None
            return ready - started
        finally:
            notify.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def journaled(self) -> int:
        if not self.db.exists():
            return 0
        with contextlib.closing(
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        ) as conn:
            try:
                row = conn.execute("SELECT MAX(seq) FROM events").fetchone()
            except sqlite3.OperationalError:
                return 0
            return int(row[0] or 0)

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from /metrics."""
        url = f"http://127.0.0.1:{self.console_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def metric_sum(self, name: str) -> float:
        """The sum of a labelled metric's samples from /metrics."""
        url = f"http://127.0.0.1:{self.console_port}/metrics"
        total = 0.0
        with urllib.request.urlopen(url, timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith((name + "{", name + " ")):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Until the MQTT session is up (READY does not wait for the broker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if self.metric("doorwatch_mqtt_connected") == 1:
                    # The SUBSCRIBE follows the CONNACK; give it a moment to be granted.
                    time.sleep(0.3)
                    return
            time.sleep(0.05)
        raise TimeoutError("daemon did not connect to the broker")

    def rss_mb(self) -> float:
        return proc_rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)


# ----- the webhook receiver -----


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # perf_counter() on arrival
    action: str
    rule: str
    door: str | None
    raised_at: str | None


class WebhookReceiver:
    """An aiohttp server in its own thread; verifies the HMAC and timestamps each POST."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[Arrival] = []
        self.reports: list[dict[str, Any]] = []  # a peer's own reports (pong, drain figures)
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._key = WEBHOOK_KEY.encode()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._started.set()
        self._loop.run_forever()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.perf_counter()
        signature = request.headers.get("X-Doorwatch-Signature")
        if signature is not None:
            expected = "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature, expected):
                self.bad_signatures += 1
        data = orjson.loads(body)
        if data.get("action") in {"report", "pong"}:
            with self._lock:
                self.reports.append({**data, "at": at})
            return web.Response(status=204)
        alert = data.get("alert") or {}
        arrival = Arrival(
            at,
            str(data.get("action")),
            str(alert.get("rule_type") or alert.get("rule")),
            alert.get("door"),
            alert.get("raised_at"),
        )
        with self._lock:
            self.arrivals.append(arrival)
        return web.Response(status=204)

    def first(self, action: str, rule_prefix: str) -> dict[str | None, Arrival]:
        """The first arrival per door of one action of one rule."""
        out: dict[str | None, Arrival] = {}
        with self._lock:
            for a in self.arrivals:
                if a.action == action and a.rule.startswith(rule_prefix) and a.door not in out:
                    out[a.door] = a
        return out

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class Sampler:
    """Samples a daemon's RSS, queue depth and journal position once a second in a thread."""

    def __init__(self, daemon: Daemon, interval: float = 1.0) -> None:
        self.daemon = daemon
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            sample: dict[str, float] = {"t": round(time.perf_counter() - started, 2)}
            with contextlib.suppress(OSError, ValueError):
                sample["rss_mb"] = round(self.daemon.rss_mb(), 1)
                sample["cpu_s"] = round(self.daemon.cpu_seconds(), 2)
                sample["journaled"] = self.daemon.journaled()
                depth = self.daemon.metric("doorwatch_ingest_queue_depth")
                if depth is not None:
                    sample["queue_depth"] = depth
            self.samples.append(sample)
            self._stop.wait(self.interval)

    def stop(self) -> list[dict[str, float]]:
        self._stop.set()
        self._thread.join(10)
        return self.samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
