"""A real local HTTP receiver for notification tests: records requests, can fail on demand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """An aiohttp server on a free port. ``status`` is what it answers; 0 means 'hang up'."""

    status: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    runner: web.AppRunner | None = None
    port: int = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status == 0:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if 200 <= self.status < 300:
            self.received.append(Received(request.path, dict(request.headers), body))
        return web.Response(status=self.status, text="ok")

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"received {len(self.received)} of {count} deliveries")
            await asyncio.sleep(0.02)
        return self.received
