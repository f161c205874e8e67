"""All configured cameras: their tasks, health checks, snapshots and shutdown.

:func:`wire` is what ``doorwatch.app.build`` calls when ``cameras:`` is not empty. It adds
one named service per camera (``onvif[<camera id>].pull``) to ``daemon.services``, one health
check per camera (``camera:<camera id>``) and a stop hook that unsubscribes every camera,
and returns the :class:`CameraManager` (``await manager.snapshot(camera_id)`` gives a JPEG
for an alert, or None).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client import CollectorRegistry

from doorwatch.adapters.onvif.camera import Camera, EventSink
from doorwatch.adapters.onvif.config import CameraConfig
from doorwatch.adapters.onvif.metrics import CameraMetrics
from doorwatch.adapters.onvif.snapshot import SnapshotFetcher
from doorwatch.config.secrets import read_secret
from doorwatch.health import HealthCheck

if TYPE_CHECKING:
    from doorwatch.app import Daemon

# Unsubscribing every camera at shutdown gets this long in all, within systemd's stop timeout.
_CLOSE_TIMEOUT = 5.0
# Cameras connecting at the same time. The first connections load the library's WSDL
# documents (~0.15 s of CPU each, per camera, until cached); fifty at once starve the event
# loop for seconds and time each other out. A camera only holds a slot while connecting.
_CONNECT_SLOTS = 8


class CameraManager:
    """Owns every camera; its tasks run under the daemon's TaskGroup (or :meth:`run`)."""

    def __init__(
        self,
        configs: Sequence[CameraConfig],
        *,
        sink: EventSink,
        site_doors: Collection[str],
        registry: CollectorRegistry,
        passwords: dict[str, str | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Create the cameras (no I/O).

        Args:
            configs: the ``cameras:`` entries.
            sink: where events go; the daemon passes ``Pipeline.submit``.
            site_doors: the site's door ids.
            registry: the Prometheus registry for the camera metrics.
            passwords: camera id -> password; missing ids are read from ``password_file``.
            rng: jitter source shared by the cameras (tests pass a seeded one).
        """
        self.metrics = CameraMetrics(registry)
        self._http_session: aiohttp.ClientSession | None = None
        self.cameras: dict[str, Camera] = {}
        slots = asyncio.Semaphore(_CONNECT_SLOTS)
        passwords = passwords or {}
        for index, config in enumerate(configs):
            password = passwords.get(config.id)
            if password is None and config.password_file is not None:
                password = read_secret(
                    config.password_file, key_path=f"cameras[{index}].password_file"
                )
            snapshots = SnapshotFetcher(
                config.id,
                username=config.username,
                password=password,
                profile=config.snapshot_profile,
                timeout=config.snapshot_timeout,
                max_bytes=config.snapshot_max_bytes,
                http=self._http,
                metrics=self.metrics,
            )
            self.cameras[config.id] = Camera(
                config,
                password=password,
                sink=sink,
                site_doors=site_doors,
                metrics=self.metrics,
                snapshots=snapshots,
                connect_slots=slots,
                rng=rng,
            )

    def services(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """One named long-running coroutine per camera, for ``daemon.services``."""
        return {
            f"onvif[{camera_id}].pull": camera.run for camera_id, camera in self.cameras.items()
        }

    def health_checks(self) -> dict[str, HealthCheck]:
        """One health check per camera, named ``camera:<id>``."""
        return {f"camera:{camera_id}": camera.health for camera_id, camera in self.cameras.items()}

    async def run(self) -> None:
        """Run every camera until cancelled (outside the daemon: tools and tests)."""
        try:
            async with asyncio.TaskGroup() as group:
                for name, service in self.services().items():
                    group.create_task(service(), name=name)
        finally:
            await self.close()

    async def snapshot(self, camera_id: str) -> bytes | None:
        """A JPEG from the camera, or None (unknown camera, disabled, unreachable, refused)."""
        camera = self.cameras.get(camera_id)
        if camera is None:
            return None
        return await camera.snapshot()

    async def close(self) -> None:
        """Unsubscribe every camera (best effort, bounded) and close HTTP sessions."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await asyncio.gather(
                    *(camera.close() for camera in self.cameras.values()), return_exceptions=True
                )
        http, self._http_session = self._http_session, None
        if http is not None:
            await http.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._http_session is None or self._http_session.closed:
            self._http_session = aiohttp.ClientSession()
        return self._http_session


def wire(daemon: Daemon) -> CameraManager:
    """Add the configured cameras to a daemon: services, health checks and a stop hook."""
    config = daemon.config
    manager = CameraManager(
        config.cameras,
        sink=daemon.pipeline.submit,
        site_doors=[door.id for door in config.doors],
        registry=daemon.metrics.registry,
    )
    daemon.services.update(manager.services())
    for name, check in manager.health_checks().items():
        daemon.health.add(name, check)
    daemon.on_stop.append(manager.close)
    return manager
