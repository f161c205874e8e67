"""doorwatch benchmark: measures doorwatch against its limits, side by side, in one run.

Every figure that matters is a ratio measured in the same run on the same broker (this
machine is shared and noisy); absolute numbers are printed for context. See bench/README.md.

    python bench/run.py --quick     # under a minute; last line is one JSON object
    python bench/run.py             # the full run (adds sustained load, cameras, peer)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(port)


@dataclass
class Broker:
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
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)])
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


def uhppoted_payload(i: int) -> bytes:
    """A realistic uhppoted-mqtt live event (about 330 bytes)."""
    device = 405419896 + (i % 4)
    return json.dumps(
        {
            "message": {
                "event": {
                    "event": {
                        "access-granted": i % 7 != 0,
                        "card-number": 8165537 + (i % 500),
                        "device-id": device,
                        "direction": 1,
                        "direction-text": "in",
                        "door-id": 1 + i % 4,
                        "event-id": i + 1,
                        "event-reason": 1 if i % 7 else 6,
                        "event-reason-text": "swipe" if i % 7 else "no access rights",
                        "event-type": 1,
                        "event-type-text": "card swipe",
                        "timestamp": "2026-11-28 10:28:32 CST",
                    }
                }
            }
        }
    ).encode()


def generic_payload(i: int) -> bytes:
    return json.dumps(
        {
            "kind": "access.granted",
            "door": f"door-{i % 8}",
            "credential": str(8165537 + i),
            "dedupe_key": f"b{i}",
        }
    ).encode()


class Publisher:
    """Publishes a backlog at QoS 1 in chunks (one paho publisher stalls on huge bursts)."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}"
        )
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payloads: list[bytes], chunk: int = 5000) -> None:
        for start in range(0, len(payloads), chunk):
            infos = [self.client.publish(topic, p, qos=1) for p in payloads[start : start + chunk]]
            for info in infos:
                info.wait_for_publish(60)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def register_session(port: int, client_id: str, topic: str) -> None:
    """Create a persistent QoS 1 subscription so the broker queues a backlog for it."""
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.on_subscribe = lambda *_args: done.set()
    props = paho.Properties(paho.PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(topic, qos=1)
    done.wait(10)
    client.loop_stop()
    client.disconnect()


def paho_drain(port: int, topic: str, count: int) -> float:
    """A bare paho subscriber (callback API, does nothing) draining a QoS 1 backlog: msg/s."""
    client_id = f"bench-paho-{uuid.uuid4().hex[:6]}"
    register_session(port, client_id, topic)
    pub = Publisher(port)
    pub.publish(topic, [generic_payload(i) for i in range(count)])
    pub.close()
    received = 0
    first: list[float] = []
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received >= count:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.on_message = on_message
    props = paho.Properties(paho.PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - first[0]
    client.loop_stop()
    client.disconnect()
    return count / elapsed


def mosquitto_sub_drain(port: int, topic: str, count: int) -> float | None:
    """mosquitto's own C client draining the same backlog: the machine's limit."""
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        return None
    client_id = f"bench-msub-{uuid.uuid4().hex[:6]}"
    register_session(port, client_id, topic)
    pub = Publisher(port)
    pub.publish(topic, [generic_payload(i) for i in range(count)])
    pub.close()
    started = time.perf_counter()
    subprocess.run(
        [
            sub,
            "-p",
            str(port),
            "-V",
            "mqttv5",
            "-c",
            "-i",
            client_id,
            "-x",
            "3600",
            "-q",
            "1",
            "-t",
            topic,
            "-C",
            str(count),
        ],
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=300,
    )
    # Includes process start and CONNECT (a few ms) over a drain of many thousands.
    return count / (time.perf_counter() - started)


@dataclass
class Daemon:
    workdir: Path
    broker_port: int
    codec: str = "uhppoted"
    extra: str = ""
    console_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "doorwatch.db"

    def write_config(self) -> Path:
        doors = "\n".join(f"  - {{id: door-{d}, name: Door {d}}}" for d in range(8))
        mapping = ", ".join(f'"{405419896 + d // 4}:{1 + d % 4}": door-{d}' for d in range(8))
        config = self.workdir / "doorwatch.yaml"
        config.write_text(
            f"site: {{name: Bench High, timezone: America/Chicago}}\n"
            f'mqtt: {{url: "mqtt://127.0.0.1:{self.broker_port}", client_id: bench-doorwatch}}\n'
            f"storage: {{path: {self.db}}}\n"
            f"doors:\n{doors}\n"
            f"controllers:\n"
            f'  - {{id: ctl, codec: {self.codec}, topics: ["bench/events/#"], doors: {{{mapping}}}}}\n'
            f'console: {{listen: "127.0.0.1:{self.console_port}"}}\n'
            f"logging: {{level: warning}}\n" + self.extra
        )
        return config

    def start(self) -> float:
        """Start and return seconds from process start to READY (/healthz 200)."""
        config = self.write_config()
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "doorwatch", "run", "-c", str(config)],
            stderr=(self.workdir / "daemon.log").open("ab"),
        )
        import urllib.request

        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.console_port}/healthz", timeout=0.5
                ) as r,
            ):
                if r.status == 200:
                    return time.perf_counter() - started
            if self.process.poll() is not None:
                raise RuntimeError("daemon exited; see " + str(self.workdir / "daemon.log"))
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(15)

    def journaled(self) -> int:
        if not self.db.exists():
            return 0
        with contextlib.closing(
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        ) as conn:
            try:
                return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    def rss_mb(self) -> float:
        assert self.process is not None
        with Path(f"/proc/{self.process.pid}/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def doorwatch_drain(workdir: Path, port: int, count: int, codec: str) -> dict[str, float]:
    """The daemon draining a QoS 1 backlog: decoded, journaled (WAL, FULL), acked, ruled."""
    daemon = Daemon(workdir, port, codec=codec)
    daemon.start()  # Registers the persistent session...
    daemon.stop()  # ...then goes away while the backlog builds.
    make = uhppoted_payload if codec == "uhppoted" else generic_payload
    pub = Publisher(port)
    pub.publish("bench/events/live", [make(i) for i in range(count)])
    pub.close()
    already = daemon.journaled()
    daemon.start()
    started = None
    while True:
        n = daemon.journaled() - already
        if n > 0 and started is None:
            started = time.perf_counter()
        if n >= count:
            break
        time.sleep(0.005)
    assert started is not None
    elapsed = time.perf_counter() - started
    rss = daemon.rss_mb()
    daemon.stop()
    return {"eps": count / elapsed, "rss_mb": rss}


def measure_ready(workdir: Path, port: int, runs: int = 3) -> float:
    """Process start to READY, median of a few runs."""
    samples = []
    for _ in range(runs):
        daemon = Daemon(workdir, port, codec="generic")
        samples.append(daemon.start())
        daemon.stop()
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under 60 s")
    parser.add_argument("--codec", default="uhppoted", help="payload format fed to the daemon")
    args = parser.parse_args()
    count = 10_000 if args.quick else 40_000
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "messages": count}
    with tempfile.TemporaryDirectory(prefix="doorwatch-bench-") as tmp:
        work = Path(tmp)
        broker = Broker(work)
        broker.start()
        try:
            results["paho_eps"] = round(paho_drain(broker.port, "bench/paho", count))
            msub = mosquitto_sub_drain(broker.port, "bench/msub", count)
            results["mosquitto_sub_eps"] = round(msub) if msub else None
            dw_dir = work / "dw"
            dw_dir.mkdir()
            drain = doorwatch_drain(dw_dir, broker.port, count, args.codec)
            results["ingest_eps"] = round(drain["eps"])
            results["ingest_rss_mb"] = round(drain["rss_mb"], 1)
            results["ingest_ratio_vs_paho"] = round(drain["eps"] / results["paho_eps"], 3)
            ready_dir = work / "ready"
            ready_dir.mkdir()
            results["ready_s"] = round(measure_ready(ready_dir, broker.port), 3)
        finally:
            broker.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
