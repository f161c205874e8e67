"""Shared helpers for the ONVIF tests: fake cameras on free ports, a camera manager, waits.

Imported by the test modules (``from onvif_fixtures import ...``); pytest registers the
fixtures it finds in each module's namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from doorwatch.adapters.onvif.config import CameraConfig
from doorwatch.adapters.onvif.fake import FakeCamera, FakeCameraServer, Faults, make_cameras
from doorwatch.adapters.onvif.manager import CameraManager
from doorwatch.events import Event, EventKind

# Fast timings for tests: a pull long-polls 1 s, so a silent camera is stale after 2 s.
FAST = {
    "pull_timeout": 1.0,
    "request_timeout": 2.0,
    "retry_initial": 0.1,
    "retry_max": 0.4,
    "auth_retry_after": 2.0,
    "pull_cooldown": 0.2,
}


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive TCP ports that are all free right now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError(f"no block of {count} free ports")


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` on the event loop until it is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Collector:
    """An event sink that keeps everything it is given (stands in for Pipeline.submit)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.batches = 0

    async def __call__(self, events: Sequence[Event]) -> None:
        self.batches += 1
        self.events.extend(events)

    def of(self, kind: EventKind, *, replayed: bool | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.kind is kind and (replayed is None or e.replayed is replayed)
        ]

    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events]


def camera_config(fake: FakeCamera, camera_id: str = "cam-1", **overrides: Any) -> CameraConfig:
    """A config entry pointing at ``fake`` with test timings (``overrides`` win)."""
    values: dict[str, Any] = {
        "id": camera_id,
        "host": fake.host,
        "port": fake.port,
        "username": fake.username,
        **FAST,
        **overrides,
    }
    return CameraConfig.model_validate(values)


@pytest.fixture
async def fakes():
    """Factory: start ``count`` fake cameras on free consecutive ports (stopped at teardown)."""
    servers: list[FakeCameraServer] = []

    async def start(
        count: int = 1, faults: Faults | None = None, **options: Any
    ) -> list[FakeCamera]:
        cameras = make_cameras(count, free_port_block(count), faults=faults, **options)
        server = FakeCameraServer(cameras)
        await server.start()
        servers.append(server)
        return cameras

    yield start
    for server in servers:
        await server.stop()


class Running:
    """A camera manager running in a task, with its collector."""

    def __init__(self, manager: CameraManager, collector: Collector, task: asyncio.Task[None]):
        self.manager = manager
        self.collector = collector
        self.task = task

    def camera(self, camera_id: str = "cam-1"):
        return self.manager.cameras[camera_id]

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def run_cameras():
    """Factory: run a CameraManager over configs with a Collector sink; stopped at teardown."""
    running: list[Running] = []

    async def start(
        configs: Sequence[CameraConfig], passwords: dict[str, str | None] | None = None
    ) -> Running:
        collector = Collector()
        manager = CameraManager(
            configs,
            sink=collector,
            site_doors=["east-entrance", "gym"],
            registry=CollectorRegistry(),
            passwords=passwords or {c.id: "admin" for c in configs},
            rng=random.Random(7),
        )
        task = asyncio.create_task(manager.run(), name="test.cameras")
        item = Running(manager, collector, task)
        running.append(item)
        return item

    yield start
    for item in running:
        await item.stop()
