"""Live updates for consoles: a fan-out hub and the Server-Sent Events endpoint."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from doorwatch.accounts import Role, Session
from doorwatch.web.security import ACCOUNTS_KEY, cookie_name, current_session, requires

# A console that cannot keep up with this many queued updates is disconnected; its browser
# reconnects and reloads the current picture, which is cheaper than buffering without bound.
_CLIENT_QUEUE = 500
# Comments keep idle connections open through proxies and let us notice dead clients.
_KEEPALIVE = 15.0

Message = tuple[int, str, dict[str, Any]]
# Decides per message whether a user may see it (alerts are filtered by audience).
StreamFilter = Callable[[Session, str, dict[str, Any]], bool]


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(_CLIENT_QUEUE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """Fans out messages (``door``, ``alert``, ``event``) to every connected console."""

    def __init__(self) -> None:
        self._clients: set[_Client] = set()
        self._ids = itertools.count(1)

    @property
    def clients(self) -> int:
        """Connected consoles."""
        return len(self._clients)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Send a message to everyone; never blocks, drops consoles that fell behind."""
        message = (next(self._ids), topic, data)
        for client in list(self._clients):
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                self._clients.discard(client)
                client.overflowed.set()

    def subscribe(self) -> _Client:
        """Register a new console."""
        client = _Client()
        self._clients.add(client)
        return client

    def unsubscribe(self, client: _Client) -> None:
        """Forget a console."""
        self._clients.discard(client)


HUB_KEY = web.AppKey("hub", Hub)
STREAM_FILTER_KEY: web.AppKey[StreamFilter] = web.AppKey("stream_filter")


async def _next(client: _Client) -> Message | None:
    """The next message, None on keepalive timeout; raises ConnectionResetError on overflow."""
    getter = asyncio.ensure_future(client.queue.get())
    overflow = asyncio.ensure_future(client.overflowed.wait())
    done, pending = await asyncio.wait(
        {getter, overflow}, timeout=_KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    if overflow in done:
        raise ConnectionResetError("console fell behind")
    return getter.result() if getter in done else None


@requires(Role.GUARD)
async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/stream``: Server-Sent Events of alerts and door changes."""
    hub = request.app[HUB_KEY]
    session = current_session(request)
    visible = request.app.get(STREAM_FILTER_KEY)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    client = hub.subscribe()
    accounts = request.app[ACCOUNTS_KEY]
    token = request.cookies.get(cookie_name(request), "")
    try:
        # Browsers reconnect by themselves; two seconds keeps a guard's screen near-live.
        await response.write(b"retry: 2000\n\n")
        checked = time.monotonic()
        while True:
            message = await _next(client)
            # A stream outlives requests: end it once its session has (logout, expiry, account
            # disabled), within about one keepalive period.
            if time.monotonic() - checked >= _KEEPALIVE:
                checked = time.monotonic()
                if await accounts.session(token, touch=False) is None:
                    await response.write(b"event: session-ended\ndata: {}\n\n")
                    break
            if message is None:
                await response.write(b": keepalive\n\n")
                continue
            ident, topic, data = message
            if visible is not None and not visible(session, topic, data):
                continue
            head = f"id: {ident}\nevent: {topic}\ndata: ".encode()
            await response.write(head + orjson.dumps(data) + b"\n\n")
    except ConnectionResetError:
        pass
    finally:
        hub.unsubscribe(client)
    return response
