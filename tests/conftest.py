"""Shared fixtures: a real mosquitto on a free port, configs, and a daemon in a subprocess."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class Broker:
    """A mosquitto process the test owns; can be killed and restarted on the same port."""

    port: int
    workdir: Path
    persistence: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            # mosquitto started as root drops to user 'mosquitto', which cannot write here.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "allow_anonymous true",
            "max_queued_messages 100000",
            "max_inflight_messages 20",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_on_changes true",
            "autosave_interval 1",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        conf.write_text("\n".join(lines) + "\n")
        with (self.workdir / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A fresh mosquitto on a free port, with persistence, for one test."""
    if not Path(MOSQUITTO).exists():
        pytest.fail(
            "mosquitto is not installed; run .ci/run (it installs it) or apt-get install mosquitto"
        )
    b = Broker(port=free_port(), workdir=tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


class Publisher:
    """A paho publisher that waits for each PUBACK (QoS 1), so 'sent' means 'broker has it'."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    p = Publisher(broker.port)
    yield p
    p.close()


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body).lstrip())
    return path


@dataclass
class DaemonProcess:
    """``doorwatch run`` in a subprocess, with its stderr log in a file."""

    config: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "doorwatch", "run", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                env={**os.environ, **(env or {})},
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def journal_rows(
    db_path: Path, sql: str = "SELECT dedupe_key FROM events"
) -> list[tuple[object, ...]]:
    """Read the daemon's journal from outside (WAL lets readers in while it writes)."""
    import sqlite3

    if not db_path.exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql))
    except sqlite3.OperationalError:
        return []  # Tables not created yet.
    finally:
        conn.close()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture
def site_config(tmp_path: Path, broker: Broker):
    """A daemon config with one generic controller on this test's broker and a free console port."""

    def make(
        extra: str = "", *, client_id: str = "dw-test", controllers: str | None = None
    ) -> Path:
        port = free_port()
        controllers = (
            controllers
            or """
            controllers:
              - {id: gen, codec: generic, topics: ["site/+/events"], doors: {"gym": gym-east}}
        """
        )
        body = f"""
            site: {{name: Test High, timezone: America/Chicago}}
            mqtt: {{url: "{broker.url}", client_id: {client_id}, keepalive: 5}}
            storage: {{path: {tmp_path / "doorwatch.db"}}}
            doors:
              - {{id: gym-east, name: Gym east, zone: athletics}}
              - {{id: main, name: Main entrance}}
            console: {{listen: "127.0.0.1:{port}"}}
        """
        text = textwrap.dedent(body) + textwrap.dedent(controllers) + textwrap.dedent(extra)
        path = tmp_path / "doorwatch.yaml"
        path.write_text(text)
        return path

    return make


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[object]:
    """Start ``doorwatch run`` subprocesses; every one still running is killed at teardown."""
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, str] | None = None) -> DaemonProcess:
        proc = DaemonProcess(config=config, log_path=tmp_path / f"daemon-{len(started)}.log")
        proc.start(env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(5)


def console_url(config: Path) -> str:
    """The console's base URL, read back from a config file."""
    import yaml

    listen = yaml.safe_load(config.read_text())["console"]["listen"]
    return f"http://{listen}"


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a URL; return (status, body), with status 0 when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local test URL.
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_healthy(config: Path, timeout: float = 20.0) -> None:
    """Wait until the daemon's /healthz says every part is fine (MQTT connected)."""
    base = console_url(config)
    wait_until(lambda: http_get(base + "/healthz")[0] == 200, timeout, what=f"{base}/healthz 200")


@pytest.fixture
async def running_daemon(tmp_path: Path):
    """Factory: build and run a daemon in this process (no MQTT unless configured)."""
    import asyncio

    from doorwatch import app
    from doorwatch.config import load_config

    tasks = []

    async def start(body: str):
        path = tmp_path / "doorwatch.yaml"
        path.write_text(textwrap.dedent(body).lstrip())
        daemon = await app.build(load_config(path))
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop, ready=ready.set))
        tasks.append((stop, task))
        await asyncio.wait_for(ready.wait(), 10)
        return daemon

    yield start
    for stop, task in tasks:
        stop.set()
        await asyncio.wait_for(task, 10)


# Debian's Chromium: the suite never downloads a browser.
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser():
    """Headless Chromium driven by Playwright, closed after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            await chromium.close()
