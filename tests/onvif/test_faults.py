"""The real onvif-zeep-async client against the fake camera, for every fault switch.

Each test runs a CameraManager (the daemon's camera adapter) against a fake camera on
loopback and checks that events keep flowing, or that the camera is reported offline and
comes back, and that no fault makes it hammer the camera.
"""

from __future__ import annotations

import asyncio
import re
import time

import onvif.managers
import pytest
from onvif_fixtures import camera_config, fakes, free_port_block, run_cameras, wait_for

from doorwatch.adapters.onvif.camera import CameraState
from doorwatch.adapters.onvif.fake import FakeCameraServer, FakeEvent, Faults, make_cameras
from doorwatch.events import EventKind

__all__ = ["fakes", "run_cameras"]

INPUT_ON = FakeEvent(
    "tns1:Device/Trigger/DigitalInput", {"InputToken": "AlarmIn_1"}, {"LogicalState": True}
)
INPUT_OFF = FakeEvent(
    "tns1:Device/Trigger/DigitalInput", {"InputToken": "AlarmIn_1"}, {"LogicalState": False}
)
MOTION_ON = FakeEvent("tns1:VideoSource/MotionAlarm", {"Source": "VideoSource_1"}, {"State": True})


async def subscribed(fake, count: int = 1) -> None:
    await wait_for(
        lambda: fake.subscriptions_created >= count and fake.requests["PullMessages"] >= 1,
        what=f"{count} subscription(s) and a pull",
    )


async def test_events_flow_with_state_snapshot_replayed(fakes, run_cameras):
    """After subscribing, the camera's Initialized state arrives as replayed events; a live
    input change on a mapped input is a door.opened for the site door, not replayed, with the
    camera's time as device_time; device.online comes first."""
    (fake,) = await fakes()
    running = await run_cameras([camera_config(fake, inputs={"AlarmIn_1": "east-entrance"})])
    collector = running.collector
    await wait_for(lambda: collector.of(EventKind.DOOR_CLOSED), what="initial door state")
    assert collector.events[0].kind is EventKind.DEVICE_ONLINE
    snapshot = collector.of(EventKind.DOOR_CLOSED)[0]
    assert snapshot.replayed is True
    assert snapshot.door == "east-entrance"
    assert collector.of(EventKind.CAMERA_TAMPER_CLEARED, replayed=True)
    fake.emit(INPUT_ON)
    opened = await wait_for(lambda: collector.of(EventKind.DOOR_OPENED), what="door.opened")
    assert opened[0].replayed is False
    assert opened[0].door == "east-entrance"
    assert opened[0].camera == "cam-1"
    assert opened[0].device_time is not None
    assert abs((opened[0].received_at - opened[0].device_time).total_seconds()) < 2
    assert running.camera().health().ok


async def test_renew_fault_resubscribes_and_events_keep_flowing(fakes, run_cameras, monkeypatch):
    """When the camera refuses Renew, the library's manager creates a new subscription and
    events emitted afterwards still arrive; the camera is never reported offline."""
    # The library renews at 80 % of at least 60 s; shrink that floor so a 2 s window renews
    # within the test (the renew and restart code paths are the library's own).
    monkeypatch.setattr(onvif.managers, "MINIMUM_SUBSCRIPTION_SECONDS", 1.0)
    (fake,) = await fakes(faults=Faults(renew_fails=True))
    running = await run_cameras([camera_config(fake, subscription_time=2.0)])
    await subscribed(fake)
    await wait_for(
        lambda: fake.requests["Renew"] >= 2 and fake.subscriptions_created >= 3,
        timeout=15,
        what="two refused renews and two resubscriptions",
    )
    fake.emit(INPUT_ON)
    await wait_for(lambda: running.collector.of(EventKind.INPUT_ACTIVE, replayed=False))
    assert not running.collector.of(EventKind.DEVICE_OFFLINE)
    # The pull that was waiting on the replaced subscription moved over without a failure.
    metrics = running.manager.metrics
    assert metrics.pulls.labels("cam-1", "network")._value.get() == 0


async def test_forgotten_subscription_after_reboot_is_recreated(fakes, run_cameras):
    """A camera that forgets its subscriptions (reboot) answers the pull with a SOAP Fault;
    the adapter subscribes again at once and later events arrive, with no offline report."""
    (fake,) = await fakes()
    running = await run_cameras([camera_config(fake)])
    await subscribed(fake)
    fake.forget_subscriptions()
    await wait_for(lambda: fake.subscriptions_created >= 2, what="a new subscription")
    await wait_for(lambda: fake.subscriptions, what="a live subscription")
    fake.emit(MOTION_ON)
    await wait_for(lambda: running.collector.of(EventKind.CAMERA_MOTION, replayed=False))
    assert not running.collector.of(EventKind.DEVICE_OFFLINE)


async def test_periodic_forgetting_keeps_events_flowing(fakes, run_cameras):
    """A camera that drops subscriptions every second (a crash loop) still delivers events."""
    (fake,) = await fakes(faults=Faults(forget_every=1.0))
    running = await run_cameras([camera_config(fake)])
    await wait_for(lambda: fake.subscriptions_created >= 3, timeout=15, what="resubscriptions")
    await wait_for(lambda: fake.subscriptions, what="a live subscription")
    fake.emit(MOTION_ON)
    await wait_for(lambda: running.collector.of(EventKind.CAMERA_MOTION, replayed=False))


async def test_instant_empty_pulls_are_rate_limited(fakes, run_cameras):
    """A camera that answers PullMessages at once with nothing is pulled at most about once
    per pull_cooldown (here 0.5 s), not in a busy loop; events still arrive."""
    (fake,) = await fakes(faults=Faults(instant_empty=True))
    running = await run_cameras([camera_config(fake, pull_cooldown=0.5)])
    await subscribed(fake)
    await asyncio.sleep(0.2)
    before = fake.requests["PullMessages"]
    started = time.monotonic()
    await asyncio.sleep(3.0)
    pulls = fake.requests["PullMessages"] - before
    elapsed = time.monotonic() - started
    assert pulls <= elapsed / 0.5 + 2, f"{pulls} pulls in {elapsed:.1f} s"
    assert pulls >= 3, "the camera is still being pulled"
    fake.emit(INPUT_ON)
    await wait_for(lambda: running.collector.of(EventKind.INPUT_ACTIVE, replayed=False))


async def test_numeric_booleans_are_read(fakes, run_cameras):
    """``State="1"`` / ``LogicalState="1"`` (Dahua style) read as true, ``"0"`` as false."""
    (fake,) = await fakes(faults=Faults(numeric_bools=True))
    running = await run_cameras([camera_config(fake, inputs={"AlarmIn_1": "gym"})])
    await subscribed(fake)
    fake.emit(MOTION_ON)
    fake.emit(INPUT_ON)
    await wait_for(lambda: running.collector.of(EventKind.CAMERA_MOTION, replayed=False))
    await wait_for(lambda: running.collector.of(EventKind.DOOR_OPENED, replayed=False))
    fake.emit(INPUT_OFF)
    closed = await wait_for(lambda: running.collector.of(EventKind.DOOR_CLOSED, replayed=False))
    assert closed[0].door == "gym"


async def test_initialized_burst_is_state_never_alarm_edges(fakes, run_cameras):
    """A burst of Initialized properties that are all 'true' (objects inside a field) is
    journaled as replayed state only: not one non-replayed motion event."""
    (fake,) = await fakes(faults=Faults(initialized_burst=40))
    running = await run_cameras([camera_config(fake)])
    collector = running.collector
    await wait_for(
        lambda: len(collector.of(EventKind.CAMERA_MOTION)) >= 40, what="the Initialized burst"
    )
    assert all(e.replayed for e in collector.of(EventKind.CAMERA_MOTION))
    assert len({e.dedupe_key for e in collector.of(EventKind.CAMERA_MOTION)}) >= 40


async def test_event_storm_beyond_message_limit_is_drained(fakes, run_cameras):
    """An event storm of 250 messages (limit 100 per pull) arrives completely, in several
    back-to-back pulls, each with its own dedupe key."""
    (fake,) = await fakes()
    running = await run_cameras([camera_config(fake)])
    await subscribed(fake)
    pulls_before = fake.requests["PullMessages"]
    fake.emit(MOTION_ON, count=250)
    live = lambda: [e for e in running.collector.events if not e.replayed and e.camera]  # noqa: E731
    await wait_for(lambda: len(live()) >= 251, what="250 storm events")
    storm = [e for e in live() if e.kind is EventKind.CAMERA_MOTION]
    assert len(storm) == 250
    assert len({e.dedupe_key for e in storm}) == 250
    assert fake.requests["PullMessages"] - pulls_before >= 3


async def test_storm_on_subscribe_is_drained(fakes, run_cameras):
    """A camera that queues 300 messages on every new subscription delivers all of them."""
    (fake,) = await fakes(faults=Faults(storm=300))
    running = await run_cameras([camera_config(fake)])
    await wait_for(
        lambda: (
            len(running.collector.of(EventKind.CAMERA_MOTION, replayed=False))
            + len(running.collector.of(EventKind.CAMERA_MOTION_STOPPED, replayed=False))
            >= 300
        ),
        what="300 storm events",
    )


async def test_html_401_caps_auth_attempts_reports_offline_and_recovers(fakes, run_cameras):
    """A camera answering an HTML 401 page instead of a SOAP Fault is tried auth_attempts
    times, then left alone for auth_retry_after (no account lockout), reported offline with
    a failing health check, and recovers once it accepts us again."""
    (fake,) = await fakes(faults=Faults(html_401=True))
    running = await run_cameras([camera_config(fake, auth_attempts=3, auth_retry_after=3.0)])
    camera = running.camera()
    await wait_for(lambda: camera.state is CameraState.AUTH_LOCKOUT, what="auth lockout")
    offline = await wait_for(lambda: running.collector.of(EventKind.DEVICE_OFFLINE))
    assert "authentication" in (offline[0].reason or "")
    assert offline[0].camera == "cam-1"
    health = camera.health()
    assert not health.ok
    assert "authentication refused" in health.detail
    refused = fake.auth_failures
    # Each attempt is GetServices then its GetCapabilities fallback: two refusals.
    assert refused <= 3 * 2
    # Watch the camera through (almost) the whole back-off window: no login attempt.
    assert camera._resume_at is not None
    await asyncio.sleep(max(0.0, camera._resume_at - time.monotonic() - 0.3))
    assert fake.auth_failures == refused, "no login attempts during the back-off"
    fake.set_faults(html_401=False)
    await wait_for(
        lambda: (
            running.collector.of(EventKind.DEVICE_ONLINE)
            and running.collector.events[-1].kind is not EventKind.DEVICE_OFFLINE
            and camera.state is CameraState.PULLING
        ),
        timeout=10,
        what="recovery",
    )
    assert camera.health().ok


async def test_wrong_password_is_not_retried_into_a_lockout(fakes, run_cameras):
    """Wrong credentials (WS-Security digest refused with ter:NotAuthorized) are retried only
    auth_attempts times before the long back-off, and the camera is reported offline."""
    (fake,) = await fakes()
    running = await run_cameras(
        [camera_config(fake, auth_attempts=2, auth_retry_after=30.0)], passwords={"cam-1": "nope"}
    )
    await wait_for(lambda: running.collector.of(EventKind.DEVICE_OFFLINE), what="offline")
    await asyncio.sleep(1.0)
    assert fake.auth_failures <= 2 * 2
    assert running.camera().state is CameraState.AUTH_LOCKOUT
    assert "nope" not in repr(running.collector.events)


async def test_clock_skew_is_reported_and_device_time_dropped(fakes, run_cameras):
    """A camera clock 30 s ahead still authenticates (the library signs with camera time),
    the skew is measured from each pull and named in health and the metric, and its event
    times are not used as device_time."""
    (fake,) = await fakes(faults=Faults(clock_skew=30.0))
    running = await run_cameras([camera_config(fake)])
    await subscribed(fake)
    fake.emit(INPUT_ON)
    events = await wait_for(lambda: running.collector.of(EventKind.INPUT_ACTIVE, replayed=False))
    assert events[0].device_time is None
    camera = running.camera()
    assert camera.clock_skew is not None
    assert 28 < camera.clock_skew < 32
    health = camera.health()
    assert health.ok
    assert re.search(r"clock skew \+(29|30|31)\.\d s beyond 5 s", health.detail), health.detail
    gauge = running.manager.metrics.clock_skew.labels("cam-1")._value.get()
    assert 28 < gauge < 32


async def test_hung_camera_goes_offline_then_recovers(fakes, run_cameras):
    """A camera that stops mid-response is reported offline (device.offline, failing health)
    within about twice the pull timeout, and online again once it answers."""
    (fake,) = await fakes()
    running = await run_cameras([camera_config(fake)])
    camera = running.camera()
    await subscribed(fake)
    await wait_for(lambda: running.collector.of(EventKind.DEVICE_ONLINE))
    fake.set_faults(hang=True)
    started = time.monotonic()
    await wait_for(lambda: running.collector.of(EventKind.DEVICE_OFFLINE), what="offline")
    assert time.monotonic() - started < 2 * 1.0 + 2.5
    assert not camera.health().ok
    fake.set_faults(hang=False)
    await wait_for(lambda: len(running.collector.of(EventKind.DEVICE_ONLINE)) >= 2, what="online")
    fake.emit(MOTION_ON)
    await wait_for(lambda: running.collector.of(EventKind.CAMERA_MOTION, replayed=False))
    assert camera.health().ok


async def test_unreachable_camera_goes_offline_and_back(run_cameras):
    """Connection refused (camera powered off) makes the camera offline after 2 x the pull
    timeout, with jittered back-off between attempts; when it is back, it is online again."""
    (fake,) = make_cameras(1, free_port_block(1))
    server = FakeCameraServer([fake])
    await server.start()
    try:
        running = await run_cameras([camera_config(fake)])
        await subscribed(fake)
        await server.stop()
        await wait_for(lambda: running.collector.of(EventKind.DEVICE_OFFLINE), what="offline")
        assert not running.camera().health().ok
        fake.forget_subscriptions()  # It rebooted while away.
        await server.start()
        await wait_for(
            lambda: len(running.collector.of(EventKind.DEVICE_ONLINE)) >= 2, what="online again"
        )
        assert running.camera().health().ok
    finally:
        await server.stop()


async def test_doubled_port_in_subscription_address_is_repaired(fakes, run_cameras):
    """A subscription address with a doubled port (``host:8106:8106``) still works."""
    (fake,) = await fakes(faults=Faults(doubled_port=True))
    running = await run_cameras([camera_config(fake)])
    await subscribed(fake)
    fake.emit(MOTION_ON)
    await wait_for(lambda: running.collector.of(EventKind.CAMERA_MOTION, replayed=False))


@pytest.mark.parametrize("door_open_when", ["active", "inactive"])
async def test_input_polarity(fakes, run_cameras, door_open_when):
    """door_open_when decides whether an active input means the door is open or closed."""
    (fake,) = await fakes()
    running = await run_cameras(
        [camera_config(fake, inputs={"AlarmIn_1": "gym"}, door_open_when=door_open_when)]
    )
    await subscribed(fake)
    fake.emit(INPUT_ON)
    expected = EventKind.DOOR_OPENED if door_open_when == "active" else EventKind.DOOR_CLOSED
    found = await wait_for(lambda: running.collector.of(expected, replayed=False))
    assert found[0].door == "gym"
