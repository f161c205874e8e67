"""Snapshots for alerts: discovered once over ONVIF, fetched with HTTP Digest, bounded in
time and size, never raising, credentials never logged."""

from __future__ import annotations

import time

from onvif_fixtures import camera_config, fakes, run_cameras, wait_for
from structlog.testing import capture_logs

from doorwatch.adapters.onvif.fake import Faults, snapshot_jpeg
from doorwatch.adapters.onvif.snapshot import redact_url

__all__ = ["fakes", "run_cameras"]


async def started(fakes, run_cameras, faults: Faults | None = None, **options):
    (fake,) = await fakes(faults=faults)
    running = await run_cameras([camera_config(fake, **options)])
    await wait_for(lambda: fake.subscriptions, what="a subscription")
    return fake, running


async def test_snapshot_is_the_cameras_jpeg_with_digest_auth_and_cached_discovery(
    fakes, run_cameras
):
    """The manager returns the camera's JPEG byte for byte; the first GET is challenged and
    answered with Digest; the profile and URI are discovered once and reused."""
    fake, running = await started(fakes, run_cameras)
    first = await running.manager.snapshot("cam-1")
    second = await running.manager.snapshot("cam-1")
    assert first == second == snapshot_jpeg()
    assert first is not None
    assert first.startswith(b"\xff\xd8")
    assert fake.requests["GetProfiles"] == 1
    assert fake.requests["GetSnapshotUri"] == 1
    # One challenge, then authenticated GETs; the second answers the challenge pre-emptively.
    assert fake.requests["snapshot"] == 3
    assert fake.auth_failures == 0
    metrics = running.manager.metrics
    assert metrics.snapshots.labels("cam-1", "ok")._value.get() == 2


async def test_configured_profile_is_used_and_a_missing_one_falls_back(fakes, run_cameras):
    """snapshot_profile picks the media profile; an unknown token falls back to the first."""
    _fake, running = await started(fakes, run_cameras, snapshot_profile="profile_2")
    assert await running.manager.snapshot("cam-1") is not None
    assert "profile=profile_2" in (running.camera()._snapshots.uri or "")
    _fake, other = await started(fakes, run_cameras, snapshot_profile="nope")
    with capture_logs() as logs:
        assert await other.manager.snapshot("cam-1") is not None
    assert "profile=profile_1" in (other.camera()._snapshots.uri or "")
    assert any("not found" in entry["event"] for entry in logs)


async def test_refused_snapshot_returns_none_and_rediscovers(fakes, run_cameras):
    """A 401 from the snapshot URL gives None (no exception) and the URI is discovered
    again next time, when the camera serves it again."""
    fake, running = await started(fakes, run_cameras)
    assert await running.manager.snapshot("cam-1") is not None
    fake.set_faults(html_401=True)
    assert await running.manager.snapshot("cam-1") is None
    fake.set_faults(html_401=False)
    assert await running.manager.snapshot("cam-1") is not None
    assert fake.requests["GetSnapshotUri"] == 2


async def test_oversized_snapshot_is_refused(fakes, run_cameras):
    """An image above snapshot_max_bytes is refused (None) without keeping it."""
    _fake, running = await started(
        fakes,
        run_cameras,
        faults=Faults(snapshot_padding=2 * 1024 * 1024),
        snapshot_max_bytes=1024 * 1024,
    )
    assert await running.manager.snapshot("cam-1") is None
    assert running.manager.metrics.snapshots.labels("cam-1", "too_large")._value.get() == 1


async def test_hung_snapshot_gives_up_within_the_timeout(fakes, run_cameras):
    """A camera that never answers the snapshot GET costs at most snapshot_timeout."""
    fake, running = await started(fakes, run_cameras, snapshot_timeout=1.0)
    assert await running.manager.snapshot("cam-1") is not None
    fake.set_faults(hang=True)
    begun = time.monotonic()
    assert await running.manager.snapshot("cam-1") is None
    assert time.monotonic() - begun < 1.8
    fake.set_faults(hang=False)


async def test_disabled_unknown_or_disconnected_cameras_give_none(fakes, run_cameras):
    """snapshot: false, an unknown camera id, or a camera never reached give None."""
    fake, running = await started(fakes, run_cameras, snapshot=False)
    assert await running.manager.snapshot("cam-1") is None
    assert await running.manager.snapshot("no-such-camera") is None
    assert fake.requests["GetProfiles"] == 0
    (other,) = await fakes(faults=Faults(html_401=True))
    blocked = await run_cameras([camera_config(other)])
    assert await blocked.manager.snapshot("cam-1") is None


def test_urls_are_logged_without_credentials():
    """Userinfo and credential query parameters are removed from logged URIs."""
    shown = redact_url("http://admin:hunter2@10.0.0.5/snap.jpg?user=admin&password=hunter2&x=1")
    assert "hunter2" not in shown
    assert "x=1" in shown
    assert "10.0.0.5/snap.jpg" in shown
