"""Snapshot capture at raise time: the door's ONVIF camera (our fake camera, through the real
onvif-zeep-async client) is asked for a JPEG, which is stored with the alert and attached to
the push notification."""

from __future__ import annotations

import asyncio
import base64
import time

from conftest import free_port

from doorwatch.adapters.onvif.fake import FakeCameraServer, make_cameras, snapshot_jpeg
from doorwatch.events import Event, EventKind, utcnow
from tests.notify.receiver import Receiver


async def eventually(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_forced_door_alert_carries_the_door_cameras_snapshot(running_daemon, tmp_path):
    (camera,) = make_cameras(1, free_port())
    push = Receiver()
    await push.start()
    secret = tmp_path / "cam.pass"
    secret.write_text("admin\n")
    async with FakeCameraServer([camera]):
        daemon = await running_daemon(f"""
            site: {{name: Test High, timezone: America/Chicago}}
            storage: {{path: {tmp_path / "doorwatch.db"}}}
            console: {{listen: "127.0.0.1:{free_port()}"}}
            doors:
              - {{id: gym, name: Gym east, cameras: [cam-gym]}}
            cameras:
              - {{id: cam-gym, host: 127.0.0.1, port: {camera.port}, username: admin,
                  password_file: {secret}, pull_timeout: 1s, request_timeout: 2s}}
            rules: [{{type: door_forced_open}}]
            notify:
              apprise: [{{url: "json://127.0.0.1:{push.port}/push"}}]
        """)
        forced = Event(
            kind=EventKind.DOOR_FORCED,
            source="test",
            door="gym",
            received_at=utcnow(),
            dedupe_key="forced-1",
        )
        await daemon.pipeline.submit([forced])
        assert daemon.alerts is not None
        store = daemon.alerts.store
        (alert,) = await store.query()
        jpeg = await eventually(lambda: store.snapshot(alert["id"]), what="stored snapshot")
        (got,) = await push.wait_for(1)
    await push.stop()
    assert jpeg == snapshot_jpeg()
    assert jpeg[:2] == b"\xff\xd8"
    (attachment,) = got.json()["attachments"]
    assert base64.b64decode(attachment["base64"]) == jpeg
    assert (await store.get(alert["id"]))["has_snapshot"] is True
