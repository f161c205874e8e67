"""Cameras inside the real daemon: wired by build(), journaled through the pipeline, health
checks per camera, offline/online journaled, Unsubscribe at shutdown, passwords kept secret."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time

from conftest import free_port, http_get, wait_until
from onvif_fixtures import fakes, free_port_block, wait_for

from doorwatch.adapters.onvif.fake import FakeEvent
from doorwatch.events import EventKind

__all__ = ["fakes"]

PASSWORD = "s3cret-camera-pass"


def site(tmp_path, camera_port: int, *, top: str = "") -> str:
    """A daemon config (YAML text) with one camera on ``camera_port`` and test timings."""
    secret = tmp_path / "cam.pass"
    secret.write_text(PASSWORD + "\n")
    return top + textwrap.dedent(f"""
        site: {{name: Test High, timezone: America/Chicago}}
        storage: {{path: {tmp_path / "doorwatch.db"}}}
        console: {{listen: "127.0.0.1:{free_port()}"}}
        doors:
          - {{id: east-entrance, name: East entrance, cameras: [cam-east]}}
        cameras:
          - id: cam-east
            host: 127.0.0.1
            port: {camera_port}
            username: admin
            password_file: {secret}
            inputs: {{AlarmIn_1: east-entrance}}
            pull_timeout: 1s
            request_timeout: 2s
            retry_initial: 0.1
            retry_max: 0.5
            pull_cooldown: 0.2
    """)


async def journaled(daemon, kind: EventKind, *, replayed: bool | None = None):
    async def check():
        items = await daemon.journal.recent(kind=kind.value, limit=1000)
        return [i.event for i in items if replayed is None or i.event.replayed is replayed]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind.value} journaled")


async def test_build_wires_cameras_into_the_daemon(fakes, running_daemon, tmp_path):
    """build() adds one named task per camera, a camera health check, and the camera's
    events go through the pipeline into the journal, door-mapped; offline and online are
    journaled with the camera set; stopping the daemon unsubscribes."""
    (fake,) = await fakes(password=PASSWORD)
    daemon = await running_daemon(site(tmp_path, fake.port))
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "onvif[cam-east].pull" in names
    assert "onvif[cam-east].pull" in daemon.services
    await wait_for(lambda: fake.subscriptions, what="a subscription")
    fake.emit(
        FakeEvent(
            "tns1:Device/Trigger/DigitalInput", {"InputToken": "AlarmIn_1"}, {"LogicalState": True}
        )
    )
    opened = await journaled(daemon, EventKind.DOOR_OPENED, replayed=False)
    assert opened[0].door == "east-entrance"
    assert opened[0].camera == "cam-east"
    assert daemon.state.door("east-entrance").position.value == "open"
    healthy, report = daemon.health.report()
    assert report["checks"]["camera:cam-east"]["ok"] is True
    assert healthy

    fake.set_faults(hang=True)
    offline = await journaled(daemon, EventKind.DEVICE_OFFLINE)
    assert offline[0].camera == "cam-east"
    assert offline[0].source == "cam-east"
    healthy, report = daemon.health.report()
    assert not healthy
    assert report["checks"]["camera:cam-east"]["ok"] is False
    fake.set_faults(hang=False)
    await wait_for(lambda: daemon.health.report()[0], what="healthy again")
    online = await journaled(daemon, EventKind.DEVICE_ONLINE)
    assert len(online) >= 2


def test_daemon_process_keeps_the_password_out_of_logs_and_unsubscribes(tmp_path):
    """``doorwatch run`` with a camera against ``doorwatch simulate camera``: /healthz names
    the camera, the camera password never reaches the log, and SIGTERM unsubscribes."""
    port = free_port_block(1)
    secret = tmp_path / "sim.pass"
    secret.write_text(PASSWORD)
    sim = subprocess.Popen(
        [sys.executable, "-m", "doorwatch", "simulate", "camera", "--port", str(port),
         "--password-file", str(secret)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log_path = tmp_path / "daemon.log"
    config = tmp_path / "doorwatch.yaml"
    body = site(tmp_path, port, top="logging: {level: debug, format: json}\n")
    config.write_text(body)
    daemon = None
    try:
        assert sim.stdout is not None
        assert b"simulating 1 camera" in sim.stdout.readline() + sim.stdout.readline()
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "doorwatch", "run", "-c", str(config)],
                stdout=log,
                stderr=log,
            )
        listen = next(line for line in body.splitlines() if "listen" in line)
        base = "http://" + listen.split('"')[1]
        stats = f"http://127.0.0.1:{port}/_sim/stats"
        wait_until(
            lambda: daemon.poll() is not None or http_get(base + "/healthz")[0] == 200,
            30,
            what="healthz 200",
        )
        assert daemon.poll() is None, log_path.read_text()
        status, payload = http_get(base + "/healthz")
        assert json.loads(payload)["checks"]["camera:cam-east"]["ok"] is True
        wait_until(lambda: json.loads(http_get(stats)[1])["subscriptions"] == 1, what="subscribed")
        # The camera counts the subscription when it answers Create; the daemon logs it once
        # its own subscribe step has returned, a moment later.
        wait_until(lambda: "camera subscribed" in log_path.read_text(), what="subscribed logged")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        requests = json.loads(http_get(stats)[1])["requests"]
        assert requests.get("Unsubscribe") == 1
        assert json.loads(http_get(stats)[1])["subscriptions"] == 0
        logs = log_path.read_text()
        assert "camera subscribed" in logs
        assert PASSWORD not in logs
    finally:
        for process in (daemon, sim):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(5)
        if sim.stdout is not None:
            sim.stdout.close()
