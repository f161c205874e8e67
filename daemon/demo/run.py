"""Runs the demo: broker, simulated controllers and cameras, the daemon and its console."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from doorwatch import app
from doorwatch.accounts import Role
from doorwatch.adapters.mqtt.simulator import FORMATS, Scenario, schedule
from doorwatch.adapters.onvif.fake import FakeCamera, FakeCameraServer, FakeEvent
from doorwatch.config.loader import load_config
from doorwatch.demo.broker import EmbeddedBroker, free_port
from doorwatch.demo.site import (
    DAY_SECONDS,
    DEMO_CAMERAS,
    TAMPER_AT,
    TAMPER_CLEARED_AT,
    demo_config,
    uhppoted_day,
    zigbee_day,
)

log = structlog.get_logger(__name__)


class ScenarioPublisher:
    """Publishes scenarios to the broker as the simulated devices would."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        protocol = paho.MQTTv5 if broker.protocol == "5" else paho.MQTTv311
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"demo-devices-{uuid.uuid4().hex[:6]}",
            protocol=protocol,
        )
        self.port = broker.port

    async def start(self) -> None:
        """Connect (off the loop: connect blocks) and start paho's network thread."""
        await asyncio.to_thread(self.client.connect, "127.0.0.1", self.port)
        self.client.loop_start()

    async def play(self, scenario: Scenario, fmt: str) -> None:
        """Play a scenario until cancelled (it loops when it repeats)."""
        renderer = FORMATS[fmt]()
        loop = asyncio.get_running_loop()
        for due, step in schedule(scenario, start=loop.time()):
            await asyncio.sleep(max(0.0, due - loop.time()))
            for message in renderer.render(step, datetime.now().astimezone()):
                self.client.publish(message.topic, message.payload, qos=1, retain=message.retain)

    def stop(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


class DemoCameras:
    """Two fake ONVIF cameras with a JPEG snapshot, and a camera tamper once per school day."""

    def __init__(self, data: Path) -> None:
        # No default password even in the demo: a fresh one per run, kept in a file the
        # config points at, as a site would.
        self.password_file = data / "camera.pass"
        password = secrets.token_urlsafe(12)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        self.cameras = {
            camera_id: FakeCamera(
                port=free_port(), username="demo", password=password, name=f"demo-{camera_id}"
            )
            for camera_id in DEMO_CAMERAS
        }
        self.server = FakeCameraServer(list(self.cameras.values()))

    @property
    def config_entries(self) -> list[tuple[str, int, Path]]:
        """(id, port, password file) for the demo config."""
        return [(cid, cam.port, self.password_file) for cid, cam in self.cameras.items()]

    async def play(self) -> None:
        """Someone covers the gym camera for a while, every school day, until cancelled."""
        gym = self.cameras["cam-gym"]
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            for offset, tampered in ((TAMPER_AT, True), (TAMPER_CLEARED_AT, False)):
                await asyncio.sleep(max(0.0, start + offset - loop.time()))
                gym.emit(
                    FakeEvent(
                        topic="tns1:RuleEngine/TamperDetector/Tamper",
                        source={"VideoSourceConfigurationToken": "VideoSource_1", "Rule": "Tamper"},
                        data={"IsTamper": tampered},
                    )
                )
            start += DAY_SECONDS


async def run_demo(*, port: int, data: Path | None, out: TextIO = sys.stdout) -> int:
    """Run the demo until SIGINT/SIGTERM; everything it writes stays in ``data`` or a temp dir."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with contextlib.ExitStack() as stack:
        if data is None:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="doorwatch-demo-")))
        data.mkdir(parents=True, exist_ok=True)
        broker = EmbeddedBroker(data)
        await broker.start()
        cameras = DemoCameras(data)
        try:
            async with cameras.server:
                return await _run_site(broker, cameras, data, port, stop, out)
        finally:
            await broker.stop()


async def _run_site(  # noqa: PLR0917 - the demo's parts, each used once.
    broker: EmbeddedBroker,
    cameras: DemoCameras,
    data: Path,
    port: int,
    stop: asyncio.Event,
    out: TextIO,
) -> int:
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    config_path = data / "doorwatch.yaml"
    config_path.write_text(
        demo_config(
            data=data,
            broker_url=broker.url,
            protocol=broker.protocol,
            port=port,
            today=today,
            cameras=cameras.config_entries,
        )
    )
    config = load_config(config_path)
    daemon = await app.build(config)
    passwords = {role: secrets.token_urlsafe(9) for role in ("sro", "guard")}
    for role, password in passwords.items():
        if not any(u.name == role for u in await daemon.accounts.users()):
            await daemon.accounts.add_user(role, Role(role), password)
        else:
            await daemon.accounts.set_password(role, password)
    devices = ScenarioPublisher(broker)
    ready = asyncio.Event()
    daemon_task = asyncio.create_task(daemon.run(stop, ready=ready.set), name="demo.daemon")
    await asyncio.wait(
        {daemon_task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    if daemon_task.done():
        return await _exit_code(daemon_task)
    print(f"doorwatch demo: console on http://127.0.0.1:{port}/", file=out)
    for role, password in passwords.items():
        print(f"{role}: {password}", file=out)
    print(f"(config and data in {data}; Ctrl-C stops)", file=out, flush=True)
    await devices.start()
    players = [
        asyncio.create_task(devices.play(uhppoted_day(), "uhppoted"), name="demo.uhppoted"),
        asyncio.create_task(devices.play(zigbee_day(), "zigbee2mqtt"), name="demo.zigbee"),
        asyncio.create_task(cameras.play(), name="demo.cameras"),
    ]
    try:
        return await _exit_code(daemon_task)
    finally:
        for player in players:
            player.cancel()
        await asyncio.gather(*players, return_exceptions=True)
        devices.stop()


async def _exit_code(task: asyncio.Task[None]) -> int:
    try:
        await task
    except Exception as exc:  # noqa: BLE001 - the demo reports and exits non-zero.
        log.error("demo failed", error=str(exc))  # noqa: TRY400 - one line for a newcomer.
        return 1
    return 0
