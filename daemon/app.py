"""The daemon's lifecycle: open storage, wire the parts, run them under one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from doorwatch import sdnotify
from doorwatch.accounts import Accounts
from doorwatch.adapters.mqtt.client import MqttClient, MqttSettings
from doorwatch.adapters.mqtt.ingest import MqttIngest, build_routes
from doorwatch.adapters.mqtt.liveness import DeviceLiveness
from doorwatch.alerts.service import (
    AlertService,
    build_alerts,
    camera_snapshots,
    schedule_on_duty,
)
from doorwatch.config import Config
from doorwatch.config.secrets import read_secret
from doorwatch.events import utcnow
from doorwatch.health import CheckResult, Health
from doorwatch.journal import Journal
from doorwatch.metrics import Metrics
from doorwatch.pipeline import Pipeline
from doorwatch.rules.service import wire as wire_rules
from doorwatch.state import StateStore
from doorwatch.storage import Database
from doorwatch.web.api import door_json
from doorwatch.web.app import attach_alerts, build_web_app
from doorwatch.web.server import serve
from doorwatch.web.stream import EventFeed, Hub

if TYPE_CHECKING:
    from doorwatch.adapters.onvif.manager import CameraManager

log = structlog.get_logger(__name__)

# Retention runs once an hour; pruning is cheap and an hour of extra rows is nothing.
_PRUNE_INTERVAL = 3600.0
# If the ingest loop has messages waiting and has not finished a batch for this long, it is
# stuck (a wedged disk), and health says so.
_INGEST_STALL = 30.0


class _Stop(Exception):  # noqa: N818 - a signal, not an error.
    """Raised inside the TaskGroup to end it cleanly."""


@dataclass
class Daemon:
    """Everything a running doorwatch holds; built by :func:`build`, run by :meth:`run`."""

    config: Config
    db: Database
    journal: Journal
    state: StateStore
    metrics: Metrics
    pipeline: Pipeline
    health: Health
    web_app: web.Application
    accounts: Accounts
    hub: Hub
    mqtt: MqttClient | None = None
    ingest: MqttIngest | None = None
    alerts: AlertService | None = None
    cameras: CameraManager | None = None
    # Extra long-running parts (rules engine, notifiers, cameras), each a named coroutine.
    services: dict[str, Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=dict)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` is set, then shut down every part."""
        http_started = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                if self.mqtt is not None and self.ingest is not None:
                    group.create_task(self.mqtt.run(), name="mqtt.client")
                    group.create_task(self.ingest.run(self.mqtt), name="mqtt.ingest")
                for name, service in self.services.items():
                    group.create_task(service(), name=name)
                console = self.config.console
                group.create_task(
                    serve(
                        self.web_app,
                        console.host,
                        console.port,
                        tls_cert=console.tls_cert_file,
                        tls_key=console.tls_key_file,
                        started=http_started,
                    ),
                    name="http",
                )
                group.create_task(self._prune_loop(), name="storage.retention")
                await http_started.wait()
                self.health.ready = True
                log.info("doorwatch ready", site=self.config.site.name)
                sdnotify.notify(f"READY=1\nSTATUS={self.status_line()}")
                if ready is not None:
                    ready()
                group.create_task(self._watchdog_loop(), name="systemd.watchdog")
                await stop.wait()
                log.info("doorwatch stopping")
                sdnotify.notify("STOPPING=1\nSTATUS=stopping")
                if self.mqtt is not None:
                    await self.mqtt.close()
                raise _Stop  # noqa: TRY301 - ends the TaskGroup, cancelling every part.
        except* _Stop:
            pass
        finally:
            for hook in self.on_stop:
                with contextlib.suppress(Exception):
                    await hook()
            await self.db.close()
            log.info("doorwatch stopped")

    def status_line(self) -> str:
        """One line for ``systemctl status``."""
        mqtt = (
            "n/a" if self.mqtt is None else ("connected" if self.mqtt.connected else "disconnected")
        )
        doors = len(self.config.doors)
        return (
            f"mqtt {mqtt}; {doors} doors; storage {'ok' if self.pipeline.storage_ok else 'FAILING'}"
        )

    async def _watchdog_loop(self) -> None:
        interval = sdnotify.watchdog_interval()
        last_status = ""
        while True:
            # Pinged from the loop itself: a blocked loop misses the deadline and systemd
            # restarts us, which is the point.
            status = self.status_line()
            message = "WATCHDOG=1" if interval else ""
            if status != last_status:
                message += f"\nSTATUS={status}"
                last_status = status
            if message.strip():
                sdnotify.notify(message.strip())
            await asyncio.sleep(interval or 5.0)

    async def _prune_loop(self) -> None:
        while True:
            cutoff = utcnow() - timedelta(days=self.config.storage.events_days)
            try:
                removed = await self.journal.prune(older_than=cutoff)
            except Exception as exc:  # noqa: BLE001 - retention must not stop the daemon.
                log.warning("retention prune failed", error=str(exc))
            else:
                if removed:
                    log.info("retention pruned events", removed=removed)
            await asyncio.sleep(_PRUNE_INTERVAL)


def mqtt_settings(config: Config, subscriptions: tuple[str, ...]) -> MqttSettings:
    """Resolve the MQTT section into connection settings (reads the password file)."""
    mqtt = config.mqtt
    assert mqtt is not None
    password = (
        read_secret(mqtt.password_file, key_path="mqtt.password_file")
        if mqtt.password_file
        else None
    )
    slug = config.site.slug
    return MqttSettings(
        host=mqtt.host,
        port=mqtt.port,
        client_id=mqtt.client_id or f"doorwatch-{slug}",
        keepalive=int(mqtt.keepalive),
        session_expiry=int(mqtt.session_expiry),
        receive_maximum=mqtt.receive_maximum,
        subscriptions=subscriptions,
        status_topic=f"doorwatch/{slug}/status",
        username=mqtt.username,
        password=password,
        tls=mqtt.tls,
        ca_file=str(mqtt.ca_file) if mqtt.ca_file else None,
        cert_file=str(mqtt.cert_file) if mqtt.cert_file else None,
        key_file=str(mqtt.key_file) if mqtt.key_file else None,
        reconnect_max=mqtt.reconnect_max,
        protocol=mqtt.protocol,
    )


async def build(config: Config) -> Daemon:
    """Open storage, rebuild state and wire every part; nothing runs until :meth:`Daemon.run`."""
    metrics = Metrics()
    health = Health()
    db = await Database.open(config.storage.path)
    daemon: Daemon | None = None
    try:
        journal = Journal(db)
        await journal.setup()
        state = StateStore(d.id for d in config.doors)
        started = time.perf_counter()
        for item in await journal.latest_per_subject():
            state.apply(item.event)
        log.info(
            "state rebuilt from journal",
            doors=len(state.doors),
            devices=len(state.devices),
            took_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        pipeline = Pipeline(journal, state, metrics)
        health.add(
            "storage",
            lambda: CheckResult(
                pipeline.storage_ok,
                "ok" if pipeline.storage_ok else str(pipeline.last_storage_error),
            ),
        )
        console = config.console
        accounts = Accounts(
            db,
            session_idle=console.session_idle,
            session_max=console.session_max,
            max_attempts=console.login_attempts,
            lockout=console.lockout,
        )
        await accounts.setup()
        hub = Hub()
        state.subscribe(lambda door: hub.publish("door", door_json(config, state, door.door)))
        pipeline.add_consumer(EventFeed(hub))
        web_app = build_web_app(
            config=config,
            health=health,
            metrics=metrics,
            accounts=accounts,
            state=state,
            journal=journal,
            hub=hub,
        )
        daemon = Daemon(
            config=config,
            db=db,
            journal=journal,
            state=state,
            metrics=metrics,
            pipeline=pipeline,
            health=health,
            web_app=web_app,
            accounts=accounts,
            hub=hub,
        )
        if config.mqtt is not None:
            _wire_mqtt(daemon)
        if config.cameras:
            from doorwatch.adapters.onvif.manager import wire as wire_cameras

            daemon.cameras = wire_cameras(daemon)
        await _wire_alerts(daemon)
        await wire_rules(daemon)
    except BaseException:
        if daemon is not None and daemon.alerts is not None and daemon.alerts.http is not None:
            await daemon.alerts.http.close()
        await db.close()
        raise
    return daemon


async def _wire_alerts(daemon: Daemon) -> None:
    config = daemon.config
    service = await build_alerts(
        config, daemon.db, daemon.metrics, mqtt=daemon.mqtt, on_duty=schedule_on_duty(config)
    )
    if daemon.cameras is not None:
        service.snapshot_source = camera_snapshots(config, daemon.cameras)
    hub = daemon.hub
    service.store.listeners.append(
        lambda change: hub.publish("alert", {"action": change.action, "alert": change.alert})
    )
    attach_alerts(daemon.web_app, service.store, service.outbox)
    daemon.alerts = service
    daemon.services["alerts"] = service.run


def _wire_mqtt(daemon: Daemon) -> None:
    config = daemon.config
    assert config.mqtt is not None
    routes = build_routes(config.controllers, [d.id for d in config.doors], daemon.metrics)
    ingest = MqttIngest(
        routes, daemon.pipeline, daemon.metrics, max_payload_bytes=config.mqtt.max_payload_bytes
    )
    metrics = daemon.metrics

    def connection_changed(connected: bool) -> None:
        metrics.mqtt_connected.set(1 if connected else 0)
        if connected:
            metrics.mqtt_connects.inc()

    client = MqttClient(
        mqtt_settings(config, ingest.subscriptions),
        ingest.enqueue,
        on_connection_change=connection_changed,
    )
    daemon.mqtt, daemon.ingest = client, ingest
    timeouts = {c.id: c.heartbeat_timeout for c in config.controllers if c.heartbeat_timeout}
    if timeouts:
        liveness = DeviceLiveness(daemon.pipeline, daemon.state, timeouts)
        daemon.services["mqtt.liveness"] = liveness.run

    def mqtt_health() -> CheckResult:
        return CheckResult(client.connected, "connected" if client.connected else "not connected")

    def ingest_health() -> CheckResult:
        stalled = ingest.queue_depth > 0 and time.monotonic() - ingest.last_progress > _INGEST_STALL
        return CheckResult(
            not stalled, f"{ingest.queue_depth} queued" + (" and stalled" if stalled else "")
        )

    daemon.health.add("mqtt", mqtt_health)
    daemon.health.add("ingest", ingest_health)


async def run(config: Config) -> None:
    """Build and run the daemon until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    daemon = await build(config)
    await daemon.run(stop, ready=freeze_startup_objects)


def freeze_startup_objects() -> None:
    """Move what start-up built out of the cyclic collector's sight.

    Config, imported modules, WSDL documents and compiled rules live as long as the process.
    Left in the collector's oldest generation, each full collection walks them all: 40 ms
    pauses of the event loop were measured under 1,000 events/s, which a door event or a
    timer arriving then has to wait out. Frozen, a full collection scans only what came later.
    """
    gc.collect()
    gc.freeze()
