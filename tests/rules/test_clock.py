"""The injectable clock: the virtual one fires due timers in order, each at its own time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from doorwatch.rules.clock import RealClock, VirtualClock

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_virtual_clock_fires_due_timers_in_deadline_order_at_their_own_time():
    """Timers scheduled out of order fire in deadline order, and the clock reads each
    timer's deadline while it runs; a timer beyond the advance waits."""
    clock = VirtualClock(T0)
    seen: list[tuple[str, float, datetime]] = []
    for name, at in (("c", 30.0), ("a", 10.0), ("b", 20.0), ("late", 61.0)):
        clock.call_at(at, lambda n=name: seen.append((n, clock.monotonic(), clock.now())))
    assert clock.advance(60) == 3
    assert seen == [
        ("a", 10.0, T0 + timedelta(seconds=10)),
        ("b", 20.0, T0 + timedelta(seconds=20)),
        ("c", 30.0, T0 + timedelta(seconds=30)),
    ]
    assert clock.now() == T0 + timedelta(seconds=60)
    assert clock.pending == 1


def test_timer_scheduled_by_a_firing_timer_fires_in_the_same_advance():
    """A callback that schedules another timer inside the advanced span sees it fire too."""
    clock = VirtualClock(T0)
    fired: list[float] = []

    def first() -> None:
        fired.append(clock.monotonic())
        clock.call_at(clock.monotonic() + 5, lambda: fired.append(clock.monotonic()))

    clock.call_at(10, first)
    clock.advance(20)
    assert fired == [10.0, 15.0]


def test_cancelled_timers_never_fire():
    """cancel() stops a pending timer."""
    clock = VirtualClock(T0)
    fired: list[str] = []
    handle = clock.call_at(5, lambda: fired.append("x"))
    handle.cancel()
    clock.advance(10)
    assert fired == []
    assert clock.pending == 0


def test_advance_to_a_wall_time_and_never_backwards():
    """advance_to moves to a wall moment; an earlier moment is a no-op; negative is refused."""
    clock = VirtualClock(T0)
    clock.advance_to(T0 + timedelta(minutes=5))
    assert clock.monotonic() == 300.0
    assert clock.advance_to(T0) == 0
    assert clock.now() == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_setting_the_wall_clock_back_fires_nothing_and_delays_nothing():
    """Stepping the wall clock back (as NTP might) relabels it; monotonic time stands still."""
    clock = VirtualClock(T0)
    fired: list[float] = []
    clock.call_at(30, lambda: fired.append(clock.monotonic()))
    clock.set_wall(T0 - timedelta(days=1))
    assert clock.now() == T0 - timedelta(days=1)
    assert fired == []
    clock.advance(30)
    assert fired == [30.0]
    assert clock.now() == T0 - timedelta(days=1) + timedelta(seconds=30)


def test_virtual_clock_needs_an_aware_start():
    """A naive start time is refused: the clock is UTC."""
    with pytest.raises(ValueError):
        VirtualClock(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test.


async def test_real_clock_runs_callbacks_on_the_loop():
    """The real clock schedules on the running loop by monotonic deadline (here: already due)."""
    clock = RealClock()
    done = asyncio.Event()
    clock.call_at(clock.monotonic(), done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert clock.now().tzinfo is UTC
