"""One camera's subscription state machine and pull loop.

States and transitions (all in :meth:`Camera._enter`, asserted)::

    starting -> connecting -> subscribing -> pulling <-> pulling
                    ^             |             |
                    |             v             v
                    +------- backoff <----------+        (network error, fault)
                    +------- auth_lockout <-----+        (auth_attempts refusals in a row)

* connecting: a new :class:`OnvifSession` measures the camera clock (anonymous
  GetSystemDateAndTime, ``adjust_time``) and discovers service addresses.
* subscribing: CreatePullPointSubscription via the library's manager, which renews at 80 %
  of the granted window and recreates the subscription itself when a Renew fails; then
  SetSynchronizationPoint (the camera's state arrives as ``Initialized`` messages).
* pulling: our own loop: PullMessages with ``pull_timeout`` and a limit of 100. A pull that
  comes back with less than a full batch is followed by ``pull_cooldown`` (less the time it
  took), so a camera that answers at once instead of long-polling cannot make us spin.
* A SOAP Fault on a pull means the camera forgot us (reboot, expiry): the session is dropped
  without Unsubscribe and rebuilt at once; repeated faults back off.
* Network errors back off with jitter (``retry_initial`` doubling to ``retry_max``) on the same
  subscription; once the camera is offline the session is dropped, so recovery starts with a
  fresh clock measurement (a rebooted camera's clock may have jumped).
* Authentication refusals drop the session (its manager would otherwise keep renewing with the
  refused credentials) and back off; after ``auth_attempts`` in a row the camera waits
  ``auth_retry_after`` between attempts and is reported offline, so we never lock the account.

Health: ``device.offline`` (source, device and camera = the camera id) once no pull has
succeeded for 2 x ``pull_timeout`` or authentication is locked out; ``device.online`` on the
first good pull after start and after every offline. Clock skew is measured from every
PullMessagesResponse ``CurrentTime``; beyond ``max_clock_skew`` it is logged, exported and
named in the health detail, and message ``UtcTime`` is not used as ``device_time``.

Unsubscribe is sent only at shutdown (:meth:`Camera.close`), best effort: some cameras drop
every subscription when one Unsubscribe arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime

import structlog

from doorwatch.adapters.onvif.client import CameraError, FailureKind, OnvifSession
from doorwatch.adapters.onvif.config import CameraConfig
from doorwatch.adapters.onvif.messages import NotificationBatch
from doorwatch.adapters.onvif.metrics import CameraMetrics
from doorwatch.adapters.onvif.normalise import Normaliser, map_inputs
from doorwatch.adapters.onvif.snapshot import SnapshotFetcher
from doorwatch.doors import DoorResolver
from doorwatch.events import Event, EventKind, content_key, iso, utcnow
from doorwatch.health import CheckResult

log = structlog.get_logger(__name__)

EventSink = Callable[[Sequence[Event]], Awaitable[object]]

# ONVIF's and Home Assistant's per-pull cap: enough to drain a burst in a few pulls without
# one huge answer.
PULL_MESSAGE_LIMIT = 100
# A pull that has not answered by twice its long-poll timeout is hung: that is also when the
# camera is declared stale, so the two agree.
_PULL_DEADLINE_FACTOR = 2.0
# Unsubscribe at shutdown gets this long in all; the camera expires the subscription anyway.
_UNSUBSCRIBE_TIMEOUT = 2.0


class CameraState(enum.Enum):
    """Where a camera's loop is; see the module docstring."""

    STARTING = "starting"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    PULLING = "pulling"
    BACKOFF = "backoff"
    AUTH_LOCKOUT = "auth_lockout"
    STOPPED = "stopped"


_S = CameraState
_TRANSITIONS: dict[CameraState, frozenset[CameraState]] = {
    _S.STARTING: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.CONNECTING: frozenset({_S.SUBSCRIBING, _S.BACKOFF, _S.AUTH_LOCKOUT, _S.STOPPED}),
    _S.SUBSCRIBING: frozenset({_S.PULLING, _S.BACKOFF, _S.AUTH_LOCKOUT, _S.STOPPED}),
    _S.PULLING: frozenset({_S.PULLING, _S.BACKOFF, _S.AUTH_LOCKOUT, _S.STOPPED}),
    _S.BACKOFF: frozenset({_S.CONNECTING, _S.SUBSCRIBING, _S.PULLING, _S.STOPPED}),
    _S.AUTH_LOCKOUT: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.STOPPED: frozenset(),
}


class Backoff:
    """Capped exponential delays with jitter: half fixed, half random, never zero."""

    def __init__(self, initial: float, maximum: float, rng: random.Random) -> None:
        """Delays start at ``initial``, double per attempt and stop growing at ``maximum``."""
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.attempt = 0
        self._rng = rng

    def next(self) -> float:
        """The next delay."""
        ceiling = min(self.maximum, self.initial * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self.attempt = 0


def site_events(events: Sequence[Event], config: CameraConfig, doors: DoorResolver) -> list[Event]:
    """A camera's decoded events as the site sees them.

    Mapped inputs become door contacts and DoorTokens become site doors; ``doorwatch decode
    -c`` uses this too, so it shows what the daemon would journal.
    """
    inputs = {EventKind.INPUT_ACTIVE, EventKind.INPUT_INACTIVE}
    return [
        e if e.kind in inputs or e.door_ref is None else doors.resolve(e)
        for e in map_inputs(events, config.inputs, config.door_open_when)
    ]


class Camera:
    """Keeps one camera subscribed and turns what it pulls into journaled events."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        password: str | None,
        sink: EventSink,
        site_doors: Collection[str],
        metrics: CameraMetrics,
        snapshots: SnapshotFetcher,
        connect_slots: asyncio.Semaphore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Set up the camera; nothing touches the network until :meth:`run`.

        Args:
            config: the camera's config entry.
            password: read from ``password_file``; never logged.
            sink: where events go (``Pipeline.submit``: journal first, then dispatch).
            site_doors: the site's door ids, for resolving DoorTokens.
            metrics: the cameras' metrics.
            snapshots: this camera's snapshot fetcher.
            connect_slots: shared by all cameras to bound how many connect at once.
            rng: jitter source (tests pass a seeded one).
        """
        self.config = config
        self.id = config.id
        self._password = password
        self._sink = sink
        self._metrics = metrics
        self._snapshots = snapshots
        self._connect_slots = connect_slots or asyncio.Semaphore(1)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography.
        self._backoff = Backoff(config.retry_initial, config.retry_max, self._rng)
        self._normaliser = Normaliser(
            config.id, on_unknown=lambda _topic: metrics.unknown_topics.labels(config.id).inc()
        )
        self._doors = DoorResolver(config.id, config.inputs, site_doors)
        self.stale_after = config.pull_timeout * _PULL_DEADLINE_FACTOR
        self.state = CameraState.STARTING
        self.session: OnvifSession | None = None
        # Set while ``session`` has finished connecting (its service addresses are known).
        self._connected = asyncio.Event()
        self.auth_failures = 0
        self._faults_in_row = 0
        self.last_error: str | None = None
        self.clock_skew: float | None = None
        self._skew_reported = False
        self._offline = False
        self._announced = False
        self._last_ok = time.monotonic()
        self._resume_at: float | None = None
        self._reported_unexpected = False
        metrics.online.labels(config.id).set(0)

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Subscribe and pull until cancelled; never raises for a camera's misbehaviour."""
        self._last_ok = time.monotonic()
        with structlog.contextvars.bound_contextvars(camera=self.id):
            try:
                while True:
                    await self._step()
            finally:
                self._enter(CameraState.STOPPED)

    async def close(self) -> None:
        """At shutdown: best-effort Unsubscribe, then close the camera's HTTP sessions."""
        self._connected.clear()
        session, self.session = self.session, None
        if session is None:
            return
        await session.unsubscribe(_UNSUBSCRIBE_TIMEOUT)
        await session.close()

    async def snapshot(self) -> bytes | None:
        """A JPEG from the camera now, or None (disabled, unreachable, refused, too large)."""
        if not self.config.snapshot:
            return None
        if not self._connected.is_set():
            # An alert right after start-up or a reconnect: give the connection a moment
            # rather than answer a door alarm without a picture.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), self.config.request_timeout)
        return await self._snapshots.fetch(self.session if self._connected.is_set() else None)

    def health(self) -> CheckResult:
        """The camera's health line for ``/healthz``."""
        if self.state is CameraState.AUTH_LOCKOUT:
            wait = max(0.0, (self._resume_at or 0.0) - time.monotonic())
            return CheckResult(
                ok=False,
                detail=f"authentication refused {self.auth_failures} times; "
                f"next attempt in {wait:.0f} s: {self.last_error}",
            )
        if self._offline:
            return CheckResult(ok=False, detail=f"offline: {self.last_error or 'no answer'}")
        detail = self.state.value
        if self.clock_skew is not None and abs(self.clock_skew) > self.config.max_clock_skew:
            detail += (
                f"; clock skew {self.clock_skew:+.1f} s beyond {self.config.max_clock_skew:g} s"
            )
        return CheckResult(ok=True, detail=detail)

    @property
    def offline(self) -> bool:
        """Whether the camera is currently reported offline."""
        return self._offline

    # --- the loop --------------------------------------------------------------------------

    def _enter(self, state: CameraState) -> None:
        assert state in _TRANSITIONS[self.state], f"{self.state.value} -> {state.value}"
        if state is not self.state:
            log.debug("camera state", state=state.value, was=self.state.value)
        self.state = state

    async def _step(self) -> None:
        config = self.config
        try:
            if self.session is None or not self.session.subscribed:
                async with self._connect_slots:
                    await self._subscribe()
            self._enter(CameraState.PULLING)
            assert self.session is not None
            started = time.monotonic()
            batch = await self.session.pull(
                config.pull_timeout,
                PULL_MESSAGE_LIMIT,
                config.pull_timeout * _PULL_DEADLINE_FACTOR,
            )
        except CameraError as err:
            await self._failed(err)
            return
        await self._pulled(batch)
        if len(batch.notifications) < PULL_MESSAGE_LIMIT:
            await self._sleep(config.pull_cooldown - (time.monotonic() - started))

    async def _subscribe(self) -> None:
        config = self.config
        if self.session is None:
            self._enter(CameraState.CONNECTING)
            self.session = OnvifSession(config.host, config.port, config.username, self._password)
            try:
                await self.session.connect(config.request_timeout)
            except CameraError:
                # Half-discovered addresses are worse than none: start over next time.
                await self._drop_session()
                raise
            self._connected.set()
        self._enter(CameraState.SUBSCRIBING)
        try:
            await self.session.subscribe(
                config.subscription_time, self._subscription_lost, config.request_timeout
            )
        except CameraError:
            await self._drop_session()
            raise
        self._metrics.subscriptions.labels(self.id).inc()
        log.info("camera subscribed", clock_offset_s=self.session.clock_offset)

    def _subscription_lost(self) -> None:
        # Called by the library's manager when a Renew failed; it resubscribes by itself.
        self._metrics.subscriptions.labels(self.id).inc()
        log.info("camera subscription renew failed; the manager resubscribes")

    async def _pulled(self, batch: NotificationBatch) -> None:
        received = utcnow()
        self._last_ok = time.monotonic()
        self._backoff.reset()
        self.auth_failures = 0
        self._faults_in_row = 0
        self._metrics.pulls.labels(self.id, "ok").inc()
        self._measure_skew(batch, received)
        trusted = self.clock_skew is not None and abs(self.clock_skew) <= self.config.max_clock_skew
        events: list[Event] = []
        if self._offline or not self._announced:
            events.append(self._device_event(EventKind.DEVICE_ONLINE, "events flowing"))
            if self._offline:
                log.info("camera back online")
            self._offline = False
            self._announced = True
            self._metrics.online.labels(self.id).set(1)
        if batch.notifications:
            self._metrics.messages.labels(self.id).inc(len(batch.notifications))
            decoded = self._normaliser.normalise(
                batch.notifications,
                received_at=received,
                trust_device_time=trusted,
                receipt_salt=None if trusted else iso(received),
            )
            events.extend(site_events(decoded, self.config, self._doors))
        if events:
            await self._sink(events)

    def _measure_skew(self, batch: NotificationBatch, received: datetime) -> None:
        skew: float | None
        if batch.current_time is not None:
            skew = (batch.current_time - received).total_seconds()
        else:
            skew = self.session.clock_offset if self.session is not None else None
        if skew is None:
            return
        self.clock_skew = skew
        self._metrics.clock_skew.labels(self.id).set(skew)
        beyond = abs(skew) > self.config.max_clock_skew
        if beyond and not self._skew_reported:
            log.warning(
                "camera clock skew beyond limit; its event times are not used",
                skew_s=round(skew, 1),
                limit_s=self.config.max_clock_skew,
                fix="set the camera to NTP or correct its clock",
            )
        elif not beyond and self._skew_reported:
            log.info("camera clock skew back within limit", skew_s=round(skew, 1))
        self._skew_reported = beyond

    async def _failed(self, err: CameraError) -> None:
        self.last_error = err.detail
        self._metrics.pulls.labels(self.id, err.kind.value).inc()
        if err.unexpected and not self._reported_unexpected:
            self._reported_unexpected = True
            log.warning("camera answer not understood", error=err.detail, exc_info=err)
        if err.kind is FailureKind.AUTH:
            await self._auth_failed(err)
            return
        if err.kind is FailureKind.SUBSCRIPTION:
            self._faults_in_row += 1
            # A fault means the camera no longer knows the subscription: start again without
            # Unsubscribe. The first time at once; a camera that faults again backs off.
            await self._drop_session()
            delay = 0.0 if self._faults_in_row == 1 else self._backoff.next()
            log.info("camera fault; resubscribing", error=err.detail, retry_in_s=round(delay, 1))
        else:
            delay = self._backoff.next()
            log.info("camera unreachable", error=err.detail, retry_in_s=round(delay, 1))
        self._enter(CameraState.BACKOFF)
        await self._check_stale()
        if self._offline:
            await self._drop_session()
        await self._sleep(delay)

    async def _auth_failed(self, err: CameraError) -> None:
        self.auth_failures += 1
        await self._drop_session()
        if self.auth_failures < self.config.auth_attempts:
            delay = self._backoff.next()
            log.warning(
                "camera refused our credentials",
                error=err.detail,
                attempt=self.auth_failures,
                of=self.config.auth_attempts,
                retry_in_s=round(delay, 1),
            )
            self._enter(CameraState.BACKOFF)
            await self._check_stale()
            await self._sleep(delay)
            return
        delay = self.config.auth_retry_after
        log.error(
            "camera authentication keeps failing; backing off to avoid an account lockout",
            error=err.detail,
            failures=self.auth_failures,
            retry_in_s=delay,
            fix="check the camera's username and password_file, and its ONVIF user",
        )
        self._enter(CameraState.AUTH_LOCKOUT)
        self._resume_at = time.monotonic() + delay
        await self._go_offline(f"authentication refused: {err.detail}")
        await self._sleep(delay)

    async def _drop_session(self) -> None:
        self._connected.clear()
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def _sleep(self, delay: float) -> None:
        """Sleep, waking at the stale deadline to report the camera offline on time."""
        end = time.monotonic() + delay
        while (remaining := end - time.monotonic()) > 0:
            step = remaining
            if not self._offline:
                step = min(step, max(0.0, self._last_ok + self.stale_after - time.monotonic()))
            await asyncio.sleep(step)
            await self._check_stale()

    async def _check_stale(self) -> None:
        age = time.monotonic() - self._last_ok
        if not self._offline and age >= self.stale_after:
            await self._go_offline(
                f"no events pulled for {age:.0f} s: {self.last_error or 'no answer'}"
            )

    async def _go_offline(self, reason: str) -> None:
        if self._offline:
            return
        self._offline = True
        self._announced = True
        self._metrics.online.labels(self.id).set(0)
        log.warning("camera offline", reason=reason)
        await self._sink([self._device_event(EventKind.DEVICE_OFFLINE, reason)])

    def _device_event(self, kind: EventKind, reason: str) -> Event:
        now = utcnow()
        return Event(
            kind=kind,
            source=self.id,
            device=self.id,
            camera=self.id,
            reason=reason,
            received_at=now,
            dedupe_key=content_key(f"onvif:{self.id}", kind.value, iso(now)),
        )
