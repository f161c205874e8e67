"""Device liveness from silence: ``device.offline`` after a heartbeat timeout, ``online`` after.

Some door sources have no last will: uhppoted-mqtt, esp-rfid outside Home Assistant mode, and
battery sensors that only wake up to report. For a controller entry with ``heartbeat_timeout``,
every device of it that *heartbeats* (has sent a ``device.heartbeat``: the uhppoted bridge's
``alive``, esp-rfid ``heartbeat``, a zigbee or Shelly sensor's periodic report) is watched: when
it has been silent for longer than the timeout, a synthetic ``device.offline`` is journaled;
the next time anything is heard from it, a ``device.online``.

Devices that never heartbeat are not judged by silence: a UHPPOTE controller or an Axis door
controller is quiet all night by design, and its liveness comes from the bridge's alerts or a
last will. Sources with a last will or availability topic report offline themselves; their
``device.offline`` is taken as is, and no second one is synthesised.

Silence is measured on an injectable monotonic clock, so a wall-clock step (NTP, DST) neither
fires nor hides a timeout. At start the last-heard times come from the state store's
``last_seen`` (rebuilt from the journal), so a restart does not forget a device that went
quiet while doorwatch was down; the devices that heartbeat come from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from doorwatch.events import Event, EventKind, utcnow
from doorwatch.journal import JournaledEvent
from doorwatch.pipeline import Pipeline
from doorwatch.state import StateStore

log = structlog.get_logger(__name__)

# Dedupe keys of the events this module makes; its own events are not "hearing" a device.
KEY_PREFIX = "liveness:"
# Even with nothing due, look again this often: cheap, and a safety net should a wake-up be
# missed.
_MAX_SLEEP = 60.0
# Never spin: deadlines closer than this are checked together.
_MIN_SLEEP = 0.01


@dataclass(slots=True)
class _Device:
    """What is known about one watched device."""

    timeout: float
    # Monotonic time of the last message heard from it.
    last_heard: float
    # Offline, whether we said so (silence) or the source did (LWT, availability, alert).
    offline: bool = False
    # Heard again after being offline: a device.online is due.
    announce_online: bool = False


class DeviceLiveness:
    """Watches heartbeating devices of controllers that have a heartbeat timeout."""

    def __init__(
        self,
        pipeline: Pipeline,
        state: StateStore,
        timeouts: Mapping[str, float],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pipeline = pipeline
        self.state = state
        self.timeouts = {source: t for source, t in timeouts.items() if t > 0}
        self.monotonic = monotonic
        self.wall = wall
        self.devices: dict[tuple[str, str], _Device] = {}
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Seed from storage, then journal offline/online transitions until cancelled."""
        # Listen first: a device heard while the journal is read is then not missed.
        self.pipeline.add_consumer(self.observe)
        try:
            await self.seed()
            while True:
                events = self.due()
                if events:
                    await self.pipeline.submit(events)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.next_check())
        finally:
            if self.observe in self.pipeline.consumers:
                self.pipeline.consumers.remove(self.observe)

    async def seed(self) -> None:
        """Learn which devices heartbeat (journal) and when each was last heard (state)."""
        latest = await self.pipeline.journal.latest_per_subject()
        now_mono, now_wall = self.monotonic(), self.wall()
        for item in latest:
            event = item.event
            if event.kind is not EventKind.DEVICE_HEARTBEAT or event.device is None:
                continue
            timeout = self.timeouts.get(event.source)
            if timeout is None or (event.source, event.device) in self.devices:
                continue  # Not watched, or already heard since start (fresher than storage).
            known = self.state.devices.get((event.source, event.device))
            seen = known.last_seen if known and known.last_seen else event.received_at
            silent_for = max(0.0, (now_wall - seen).total_seconds())
            self.devices[(event.source, event.device)] = _Device(
                timeout=timeout,
                last_heard=now_mono - silent_for,
                offline=bool(known and known.online is False),
            )
        if self.devices:
            log.info("liveness watching devices", devices=len(self.devices))

    async def observe(self, items: Sequence[JournaledEvent]) -> None:
        """Pipeline consumer: note what was heard (called with each journaled batch)."""
        now = self.monotonic()
        for item in items:
            self._observe(item.event, now)

    def _observe(self, event: Event, now: float) -> None:
        if event.device is None or event.dedupe_key.startswith(KEY_PREFIX):
            return
        timeout = self.timeouts.get(event.source)
        if timeout is None:
            return
        key = (event.source, event.device)
        device = self.devices.get(key)
        if device is None:
            if event.kind is not EventKind.DEVICE_HEARTBEAT or event.replayed:
                return
            # A device that heartbeats: from now on, its silence means something.
            self.devices[key] = _Device(timeout=timeout, last_heard=now)
            self._wake.set()
            return
        if event.kind is EventKind.DEVICE_OFFLINE:
            # The source said so itself (LWT, availability, bridge alert): no second offline.
            device.offline, device.announce_online = True, False
            return
        if event.replayed:
            return  # Retained or backlog: the broker speaking, not the device.
        device.last_heard = now
        if device.offline:
            device.offline = False
            # A source's own online event needs no echo; anything else does.
            device.announce_online = event.kind is not EventKind.DEVICE_ONLINE
        self._wake.set()

    def due(self) -> list[Event]:
        """The offline and online events due now; marks the devices accordingly."""
        now = self.monotonic()
        events: list[Event] = []
        for (source, name), device in self.devices.items():
            if device.announce_online:
                device.announce_online = False
                log.info("device heard again", source=source, device=name)
                events.append(self._event(EventKind.DEVICE_ONLINE, source, name, "heard again"))
            elif not device.offline and now - device.last_heard >= device.timeout:
                device.offline = True
                silent = round(now - device.last_heard)
                log.warning(
                    "device silent past heartbeat timeout",
                    source=source,
                    device=name,
                    silent_s=silent,
                    timeout_s=device.timeout,
                )
                reason = f"silent for {silent} s (heartbeat_timeout {device.timeout:g} s)"
                events.append(self._event(EventKind.DEVICE_OFFLINE, source, name, reason))
        return events

    def next_check(self) -> float:
        """Seconds until the next device can time out (at most a minute)."""
        now = self.monotonic()
        deadlines = [d.last_heard + d.timeout - now for d in self.devices.values() if not d.offline]
        if not deadlines:
            return _MAX_SLEEP
        return min(_MAX_SLEEP, max(_MIN_SLEEP, min(deadlines)))

    def _event(self, kind: EventKind, source: str, device: str, reason: str) -> Event:
        at = self.wall()
        return Event(
            kind=kind,
            source=source,
            device=device,
            reason=reason,
            received_at=at,
            dedupe_key=f"{KEY_PREFIX}{source}:{device}:{kind.value}:{at.timestamp():.3f}",
        )
