"""One bad camera among three: the others are unaffected and the bad one is reported.

tests/onvif/test_faults.py covers each fault switch on a single camera (reboot, renew
refused, storms, hangs, 401s, skew). What it cannot show is isolation: here three fake
cameras run under one CameraManager (the daemon's camera adapter), one of them hangs
mid-response, reboots or floods, and the events of the other two keep arriving promptly,
none of them is ever reported offline, and the bad camera is reported stale (device.offline,
failing health) and comes back.

Figures go to test-artifacts/reliability-camera-isolation.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "onvif"))
from conftest import REPO
from onvif_fixtures import camera_config, fakes, run_cameras, wait_for

from doorwatch.adapters.onvif.fake import FakeEvent
from doorwatch.events import EventKind

__all__ = ["fakes", "run_cameras"]

pytestmark = pytest.mark.faults

ARTIFACT = REPO / "test-artifacts" / "reliability-camera-isolation.json"
GOOD = ("cam-1", "cam-3")


def motion(n: int) -> FakeEvent:
    # A distinct Source per event, so each is its own message (and dedupe key).
    return FakeEvent("tns1:VideoSource/MotionAlarm", {"Source": f"VS_{n}"}, {"State": True})


async def start_three(fakes, run_cameras):
    cameras = await fakes(3)
    configs = [camera_config(fake, f"cam-{n + 1}") for n, fake in enumerate(cameras)]
    running = await run_cameras(configs)
    for fake in cameras:
        await wait_for(
            lambda f=fake: f.subscriptions_created >= 1 and f.requests["PullMessages"] >= 1,
            what="every camera subscribed and pulling",
        )
    return dict(zip(["cam-1", "cam-2", "cam-3"], cameras, strict=True)), running


def live(running, camera: str) -> list:
    return [
        e
        for e in running.collector.events
        if e.camera == camera and e.kind is EventKind.CAMERA_MOTION and not e.replayed
    ]


async def drive_good_cameras(fakes_by_id, running, rounds: int) -> list[float]:
    """Emit one motion event per round on each good camera; return each one's latency."""
    latencies = []
    for n in range(rounds):
        for camera in GOOD:
            before = len(live(running, camera))
            emitted = time.monotonic()
            fakes_by_id[camera].emit(motion(n))
            await wait_for(
                lambda c=camera, b=before: len(live(running, c)) > b,
                timeout=5,
                what=f"{camera} event {n}",
            )
            latencies.append(time.monotonic() - emitted)
        await asyncio.sleep(0.25)
    return latencies


def save(name: str, figures: dict[str, object]) -> None:
    ARTIFACT.parent.mkdir(exist_ok=True)
    results = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    results[name] = figures
    ARTIFACT.write_text(json.dumps(results, indent=2))


def offline(running, camera: str) -> list:
    return [
        e
        for e in running.collector.events
        if e.kind is EventKind.DEVICE_OFFLINE and e.camera == camera
    ]


@pytest.mark.parametrize("fault", ["hang", "reboot", "storm"])
async def test_one_bad_camera_leaves_the_others_untouched(fakes, run_cameras, fault):
    """cam-2 hangs mid-response (then recovers), reboots (forgets its subscription) or floods
    1,000 events; meanwhile cam-1 and cam-3 deliver every event within 2 s, stay healthy
    and are never reported offline. A hung cam-2 is reported offline and then online."""
    cams, running = await start_three(fakes, run_cameras)
    bad = cams["cam-2"]
    started = time.monotonic()
    if fault == "hang":
        bad.set_faults(hang=True)
    elif fault == "reboot":
        bad.forget_subscriptions()
    else:
        bad.emit(motion(9999), count=1000)
    latencies = await drive_good_cameras(cams, running, rounds=12)
    figures: dict[str, object] = {
        "good_camera_events": len(latencies),
        "good_camera_latency_s_max": round(max(latencies), 3),
        "good_camera_offline_reports": sum(len(offline(running, c)) for c in GOOD),
    }
    if fault == "hang":
        await wait_for(lambda: offline(running, "cam-2"), timeout=10, what="cam-2 offline")
        # Observed after the good cameras' rounds (about 3 s), so an upper bound.
        figures["stale_reported_within_s"] = round(time.monotonic() - started, 2)
        assert not running.camera("cam-2").health().ok
        bad.set_faults(hang=False)
        recovered_from = time.monotonic()
        await wait_for(lambda: running.camera("cam-2").health().ok, timeout=15, what="cam-2 back")
        figures["recovery_s"] = round(time.monotonic() - recovered_from, 2)
    elif fault == "reboot":
        await wait_for(lambda: bad.subscriptions_created >= 2, what="cam-2 resubscribed")
        assert not offline(running, "cam-2")
    else:
        await wait_for(lambda: len(live(running, "cam-2")) >= 1000, timeout=20, what="storm")
        figures["storm_events_delivered"] = len(live(running, "cam-2"))
    before = len(live(running, "cam-2"))
    bad.emit(motion(12345))
    await wait_for(
        lambda: len(live(running, "cam-2")) > before, timeout=10, what="cam-2 delivers again"
    )
    save(fault, figures)
    assert max(latencies) < 2.0, figures
    assert figures["good_camera_offline_reports"] == 0
    for camera in GOOD:
        assert running.camera(camera).health().ok
