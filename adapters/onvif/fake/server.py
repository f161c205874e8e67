"""Serve one or many fake cameras from one process, one aiohttp app per port."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from aiohttp import web

from doorwatch.adapters.onvif.fake.camera import DEFAULT_AUTH_WINDOW, FakeCamera, Faults

# A hung handler is released at shutdown; give it this long to notice before aiohttp cancels it.
_SHUTDOWN_GRACE = 1.0


@dataclass
class FakeCameraServer:
    """Fake cameras on consecutive ports of one host; use as ``async with``."""

    cameras: list[FakeCamera]
    host: str = "127.0.0.1"
    _runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self) -> None:
        """Listen on every camera's port."""
        for camera in self.cameras:
            runner = web.AppRunner(camera.app(), access_log=None, shutdown_timeout=_SHUTDOWN_GRACE)
            await runner.setup()
            site = web.TCPSite(runner, self.host, camera.port, reuse_address=True)
            self._runners.append(runner)
            await site.start()

    async def stop(self) -> None:
        """Release hung answers and stop listening."""
        for camera in self.cameras:
            camera.release()
        runners, self._runners = self._runners, []
        await asyncio.gather(*(runner.cleanup() for runner in runners), return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()


def make_cameras(
    count: int,
    port: int,
    *,
    host: str = "127.0.0.1",
    username: str = "admin",
    password: str = "admin",  # noqa: S107 - the simulator's documented default account.
    inputs: Sequence[str] = ("AlarmIn_1",),
    faults: Faults | None = None,
    auth_window: float = DEFAULT_AUTH_WINDOW,
) -> list[FakeCamera]:
    """``count`` cameras on ``port``, ``port + 1``, ...; each gets its own copy of ``faults``."""
    template = faults or Faults()
    return [
        FakeCamera(
            port=port + index,
            host=host,
            username=username,
            password=password,
            name=f"fake-camera-{index + 1}",
            inputs=tuple(inputs),
            auth_window=auth_window,
            faults=Faults(**vars(template)),
        )
        for index in range(count)
    ]
