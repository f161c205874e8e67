"""The clock the rules run on: real in the daemon, virtual in replay and tests.

Rules never read time themselves. Timers run on the clock's *monotonic* time, which never
jumps; the UTC wall time is only for stamping and for re-arming durable timers after a restart.
A clock's *epoch* names the timeline its monotonic readings belong to: the real clock's is the
kernel's boot id (``CLOCK_MONOTONIC`` runs on across a restart of the daemon, not across a
reboot), so a span begun before a restart is still measured on it after the restart.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class TimerHandle(Protocol):
    """A scheduled callback that can be called off."""

    def cancel(self) -> None:
        """Do not run the callback (a no-op when it already ran)."""
        ...


class Clock(Protocol):
    """Monotonic time, UTC wall time and timer scheduling."""

    @property
    def epoch(self) -> str:
        """Names the monotonic timeline: readings with the same epoch may be subtracted."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def now(self) -> datetime:
        """The current wall time, in UTC."""
        ...

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once :meth:`monotonic` reaches ``deadline``."""
        ...


_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_epoch() -> str:
    """The kernel's boot id; where there is none to read, one for this process alone."""
    try:
        boot_id = _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        boot_id = ""
    return f"boot:{boot_id}" if boot_id else f"process:{secrets.token_hex(8)}"


class RealClock:
    """The daemon's clock: ``time.monotonic`` and callbacks on the running asyncio loop."""

    def __init__(self) -> None:
        self._epoch = _boot_epoch()

    @property
    def epoch(self) -> str:
        """See :class:`Clock`: ``time.monotonic`` counts from boot, shared by every process."""
        return self._epoch

    def monotonic(self) -> float:
        """See :class:`Clock`."""
        return time.monotonic()

    def now(self) -> datetime:
        """See :class:`Clock`."""
        return datetime.now(UTC)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        """See :class:`Clock`; needs a running event loop."""
        loop = asyncio.get_running_loop()
        # The delay is computed here rather than passed to loop.call_at, so the timer does
        # not depend on the loop's own clock being time.monotonic (uvloop's is not).
        return loop.call_later(max(0.0, deadline - time.monotonic()), callback)


@dataclass(order=True, slots=True)
class VirtualTimer:
    """A callback waiting on a :class:`VirtualClock`."""

    deadline: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """See :class:`TimerHandle`."""
        self.cancelled = True


class VirtualClock:
    """A clock that only moves when told to, firing due timers in deadline order.

    Monotonic time starts at 0. The wall clock is ``start`` plus the monotonic time, until
    :meth:`set_wall` moves it on its own (as NTP might move a real one).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the virtual clock needs an aware start time")
        self._mono = 0.0
        # Each virtual clock is a timeline of its own, like a fresh boot.
        self._epoch = f"virtual:{secrets.token_hex(8)}"
        self._wall_base = start.astimezone(UTC)
        self._mono_base = 0.0
        self._timers: list[VirtualTimer] = []
        self._seq = itertools.count()

    @property
    def epoch(self) -> str:
        """See :class:`Clock`."""
        return self._epoch

    def monotonic(self) -> float:
        """See :class:`Clock`."""
        return self._mono

    def now(self) -> datetime:
        """See :class:`Clock`."""
        return self._wall_base + timedelta(seconds=self._mono - self._mono_base)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> VirtualTimer:
        """See :class:`Clock`."""
        timer = VirtualTimer(deadline, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    @property
    def next_deadline(self) -> float | None:
        """The monotonic deadline of the next pending timer."""
        self._drop_cancelled()
        return self._timers[0].deadline if self._timers else None

    @property
    def pending(self) -> int:
        """How many timers are waiting."""
        self._drop_cancelled()
        return sum(1 for t in self._timers if not t.cancelled)

    def advance(self, seconds: float) -> int:
        """Move time on by ``seconds``, firing every timer that falls due; return how many."""
        if seconds < 0:
            raise ValueError("a virtual clock does not go back")
        return self.run_until(self._mono + seconds)

    def advance_to(self, moment: datetime) -> int:
        """Move time on until the wall clock shows ``moment`` (no-op if already past it)."""
        ahead = (moment - self.now()).total_seconds()
        return self.advance(ahead) if ahead > 0 else 0

    def run_until(self, deadline: float) -> int:
        """Fire timers due up to ``deadline`` in order (each at its own time), then stop there."""
        fired = 0
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0].deadline > deadline:
                break
            timer = heapq.heappop(self._timers)
            # Time stands at the timer's deadline while it runs, as if it fired on time.
            self._mono = max(self._mono, timer.deadline)
            fired += 1
            timer.callback()
        self._mono = max(self._mono, deadline)
        return fired

    def set_wall(self, moment: datetime) -> int:
        """Show ``moment`` on the wall clock.

        Forwards, time passes (timers fire). Backwards, only the wall clock is set back and
        monotonic time stands still, so no timer fires and none is delayed.
        """
        if moment >= self.now():
            return self.advance_to(moment)
        self._wall_base = moment.astimezone(UTC)
        self._mono_base = self._mono
        return 0

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
