"""Live updates for consoles: a fan-out hub and the Server-Sent Events endpoint."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from doorwatch.accounts import Role, Session
from doorwatch.journal import JournaledEvent
from doorwatch.web.api import event_json
from doorwatch.web.security import ACCOUNTS_KEY, cookie_name, current_session, requires

# A console that cannot keep up with this many queued updates is disconnected; its browser
# reconnects and reloads the current picture, which is cheaper than buffering without bound.
_CLIENT_QUEUE = 500
# Comments keep idle connections open through proxies and let us notice dead clients.
_KEEPALIVE = 15.0
# Journaled events are gathered for this long and sent as one ``events`` message: at thousands
# of events a second a console then receives four messages a second, far inside its queue,
# and a quarter of a second is still live to a guard watching the log.
_EVENTS_INTERVAL = 0.25
# The newest this many events of an interval are sent; the console shows its newest page of
# 100 rows, so when more arrived than this it reloads that page instead (``omitted`` says so).
_EVENTS_PER_MESSAGE = 50

Message = tuple[int, str, dict[str, Any]]
# Decides per message whether a user may see it (alerts are filtered by audience).
StreamFilter = Callable[[Session, str, dict[str, Any]], bool]


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(_CLIENT_QUEUE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """Fans out messages (``door``, ``alert``, ``events``) to every connected console."""

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


class EventFeed:
    """Publishes journaled events to consoles as ``events`` messages, coalesced over time.

    A pipeline consumer: called once per committed batch, it keeps only the newest events of
    the interval and counts the rest; only those sent are rendered, at flush time, by
    :func:`event_json` (so card numbers stay masked), which keeps ingest cheap while consoles
    are open. Every console role may read the event log, so the stream sends the
    messages to every console, unfiltered, as ``GET /api/v1/events`` answers every role.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        interval: float = _EVENTS_INTERVAL,
        per_message: int = _EVENTS_PER_MESSAGE,
    ) -> None:
        if per_message < 1:
            raise ValueError("per_message must be at least 1")
        self._hub = hub
        self._interval = interval
        self._room = per_message
        self._pending: deque[JournaledEvent] = deque(maxlen=per_message)
        self._omitted = 0
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, batch: Sequence[JournaledEvent]) -> None:
        """Take a committed batch (the pipeline's consumer signature)."""
        self.add(batch)

    def add(self, batch: Sequence[JournaledEvent]) -> None:
        """Queue a batch's events for the next message (the newest ``per_message`` of them)."""
        if not batch or not self._hub.clients:
            return
        room = self._room
        newest = batch[-room:]
        # Older events pushed out of the bounded deque, or never rendered, are counted.
        self._omitted += len(batch) - len(newest)
        self._omitted += max(0, len(self._pending) + len(newest) - room)
        self._pending.extend(newest)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Publish what is queued as one message, oldest first."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        message = {"events": [event_json(item) for item in self._pending], "omitted": self._omitted}
        self._pending.clear()
        self._omitted = 0
        self._hub.publish("events", message)


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
    """``GET /api/v1/stream``: Server-Sent Events of alerts, door changes and new events."""
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
