"""Wires alerts to the rest of the daemon: routing, notifiers, escalation, snapshots, retention."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from doorwatch.alerts.store import AlertChange, AlertStore
from doorwatch.config.models import Config
from doorwatch.config.secrets import read_secret
from doorwatch.events import parse_iso, utcnow
from doorwatch.metrics import Metrics
from doorwatch.notify.apprise_target import AppriseNotifier
from doorwatch.notify.base import Notifier
from doorwatch.notify.filters import severity_at_least
from doorwatch.notify.mqtt_alerts import MqttAlertNotifier
from doorwatch.notify.outbox import Outbox, RetryPolicy
from doorwatch.notify.webhook import WebhookNotifier
from doorwatch.rules.config import Severity
from doorwatch.rules.schedules import Schedule
from doorwatch.storage import Database

log = structlog.get_logger(__name__)

# Escalation and reminders are checked this often; a few seconds late is fine for a step
# measured in minutes, and the check is one indexed query.
_ESCALATION_INTERVAL = 5.0
_RETENTION_INTERVAL = 3600.0
# How long the first push of a new alert waits for its camera snapshot.
_SNAPSHOT_WAIT = 4.0

# Whether an audience is on duty at a moment (quiet hours); wired to the schedules.
OnDuty = Callable[[str, datetime], bool]
SnapshotSource = Callable[[dict[str, Any]], Awaitable[bytes | None]]


class SnapshotCamera(Protocol):
    """What snapshot capture needs of the camera adapter."""

    async def snapshot(self, camera_id: str) -> bytes | None:
        """A JPEG from the camera, or None."""
        ...


def schedule_on_duty(config: Config) -> OnDuty | None:
    """Whether an audience is on duty at a moment, from its ``on_duty`` schedule."""
    if not any(a.on_duty for a in config.notify.audiences.values()):
        return None
    zone = ZoneInfo(config.site.timezone)
    schedules = {
        name: Schedule(name, settings, zone) for name, settings in config.schedules.items()
    }

    def on_duty(audience: str, moment: datetime) -> bool:
        settings = config.notify.audiences.get(audience)
        if settings is None or settings.on_duty is None:
            return True
        schedule = schedules.get(settings.on_duty)
        # An unknown schedule is a config error caught by check; never silence an alarm.
        return schedule is None or schedule.is_open(moment)

    return on_duty


def camera_snapshots(config: Config, cameras: SnapshotCamera) -> SnapshotSource:
    """Snapshot capture for an alert: its own camera, else the first camera of its door."""
    door_cameras = {door.id: list(door.cameras) for door in config.doors}

    async def capture(alert: dict[str, Any]) -> bytes | None:
        candidates = [alert["camera"]] if alert.get("camera") else []
        candidates += door_cameras.get(alert.get("door") or "", [])
        for camera_id in candidates:
            jpeg = await cameras.snapshot(camera_id)
            if jpeg:
                return jpeg
        return None

    return capture


def all_audiences(config: Config) -> tuple[str, ...]:
    """Every audience named anywhere in the config."""
    names: set[str] = set(config.notify.audiences)
    for target in config.notify.apprise:
        if target.audience:
            names.add(target.audience)
    for hook in config.notify.webhooks:
        names.update(hook.audiences or ())
    for route in config.notify.routes:
        names.update(route.audiences)
    for step in config.notify.escalation:
        names.update(step.to)
    return tuple(sorted(names))


def route_audiences(
    config: Config,
    *,
    rule: str,
    rule_type: str,
    zone: str | None,
    severity: Severity,
    explicit: Iterable[str] | None,
) -> tuple[str, ...]:
    """Who hears of an alert: the rule's own audiences, else matching routes, else everyone.

    Falling back to everyone is deliberate: an alarm that matches no route must still reach a
    person rather than vanish because of a routing gap.
    """
    if explicit:
        return tuple(explicit)
    chosen: set[str] = set()
    for route in config.notify.routes:
        if route.rules is not None and rule not in route.rules and rule_type not in route.rules:
            continue
        if route.zones is not None and zone not in route.zones:
            continue
        if severity.rank < route.min_severity.rank:
            continue
        chosen.update(route.audiences)
    return tuple(sorted(chosen)) if chosen else all_audiences(config)


@dataclass
class TargetChooser:
    """Picks the delivery targets of a transition: severity floors, audiences, quiet hours."""

    config: Config
    notifiers: dict[str, Notifier]
    on_duty: OnDuty | None = None
    now: Callable[[], datetime] = utcnow

    def __call__(self, alert: dict[str, Any], action: str) -> list[str]:
        """Targets for this alert transition."""
        del action  # Every transition goes to the same targets; receivers see the action.
        # Targets bound to an audience hear it only while that audience is awake; targets
        # without one (a SOC webhook, MQTT) hear everything above their severity floor.
        reachable = {**alert, "audiences": self._awake(alert)}
        return [target for target, notifier in self.notifiers.items() if notifier.wants(reachable)]

    def _awake(self, alert: dict[str, Any]) -> list[str]:
        """The alert's audiences that are on duty now, or severe enough to wake anyway."""
        audiences: list[str] = list(alert.get("audiences") or [])
        if self.on_duty is None:
            return audiences
        moment = self.now()
        return [name for name in audiences if self._hears(name, alert, moment)]

    def _hears(self, name: str, alert: dict[str, Any], moment: datetime) -> bool:
        settings = self.config.notify.audiences.get(name)
        if settings is None or settings.on_duty is None:
            return True
        assert self.on_duty is not None
        if self.on_duty(name, moment):
            return True
        floor = settings.min_severity_off_duty
        return floor is not None and severity_at_least(alert, floor)


@dataclass
class Escalator:
    """Tells the next audience when nobody acknowledges, and nags about critical alerts."""

    store: AlertStore
    config: Config
    now: Callable[[], datetime] = utcnow

    async def check(self, moment: datetime | None = None) -> list[AlertChange]:
        """Escalate and remind what is due at ``moment``; return the transitions made."""
        moment = moment or self.now()
        steps = self.config.notify.escalation
        remind = self.config.notify.remind_critical_every
        changes: list[AlertChange] = []
        for alert in await self.store.query(states=("active",), limit=10_000):
            if alert["condition_cleared"] and alert["severity"] != Severity.CRITICAL:
                continue  # Over, and not critical: waiting for an acknowledgement is enough.
            age = (moment - parse_iso(alert["raised_at"])).total_seconds()
            level = sum(1 for step in steps if age >= step.after)
            if level > alert["escalation_level"]:
                audiences = [name for step in steps[:level] for name in step.to]
                change = await self.store.escalate(
                    alert["id"], level=level, audiences=audiences, at=moment, reminder=False
                )
                if change is not None:
                    changes.append(change)
                    log.warning("alert escalated", alert_id=alert["id"], level=level, to=audiences)
                continue
            if remind and alert["severity"] == Severity.CRITICAL:
                last = alert["reminded_at"] or alert["raised_at"]
                if (moment - parse_iso(last)).total_seconds() >= remind:
                    change = await self.store.escalate(
                        alert["id"],
                        level=alert["escalation_level"],
                        audiences=(),
                        at=moment,
                        reminder=True,
                    )
                    if change is not None:
                        changes.append(change)
        return changes

    async def run(self) -> None:
        """Check every few seconds until cancelled."""
        while True:
            try:
                await self.check()
            except Exception as exc:
                log.exception("escalation check failed", error=str(exc))
            await asyncio.sleep(_ESCALATION_INTERVAL)


@dataclass
class AlertService:
    """The alert store with its notifiers, outbox and escalation, as one daemon part."""

    store: AlertStore
    outbox: Outbox
    escalator: Escalator
    http: aiohttp.ClientSession | None = None
    snapshot_source: SnapshotSource | None = None
    config: Config | None = None
    _captures: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def on_change(self, change: AlertChange) -> None:
        """After each commit: wake the outbox, fetch a snapshot for a new alert."""
        if change.action == "raised" and self.snapshot_source is not None:
            alert_id = change.alert["id"]
            task = asyncio.get_running_loop().create_task(
                self._capture(change.alert), name=f"snapshot.{alert_id}"
            )
            self._captures[alert_id] = task
            task.add_done_callback(lambda _task: self._captures.pop(alert_id, None))
        self.outbox.hand_over(change.deliveries)

    async def delivery_snapshot(self, alert_id: str) -> bytes | None:
        """The alert's snapshot for a push, waiting briefly for a capture still in flight.

        The first push of a new alert would otherwise nearly always leave before the camera
        has answered; a guard's phone should show the door, but never wait long for it.
        """
        capture = self._captures.get(alert_id)
        if capture is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(capture), _SNAPSHOT_WAIT)
        return await self.store.snapshot(alert_id)

    async def _capture(self, alert: dict[str, Any]) -> None:
        assert self.snapshot_source is not None
        try:
            jpeg = await self.snapshot_source(alert)
        except Exception as exc:  # noqa: BLE001 - a camera failure must not touch the alert.
            log.warning("snapshot failed", alert_id=alert["id"], error=str(exc))
            return
        if jpeg:
            await self.store.set_snapshot(alert["id"], jpeg, at=utcnow())

    async def run(self) -> None:
        """Run the outbox worker, escalation and retention until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.outbox.run(), name="alerts.outbox")
                group.create_task(self.escalator.run(), name="alerts.escalation")
                group.create_task(self._retention(), name="alerts.retention")
        finally:
            if self.http is not None:
                await self.http.close()

    async def _retention(self) -> None:
        while True:
            if self.config is not None:
                cutoff = utcnow() - timedelta(days=self.config.storage.alerts_days)
                try:
                    removed = await self.store.prune(resolved_before=cutoff)
                    removed_deliveries = await self.outbox.prune(older_than=cutoff.timestamp())
                except Exception as exc:  # noqa: BLE001 - retention must not stop the daemon.
                    log.warning("alert retention failed", error=str(exc))
                else:
                    if removed or removed_deliveries:
                        log.info(
                            "retention pruned alerts", alerts=removed, deliveries=removed_deliveries
                        )
            await asyncio.sleep(_RETENTION_INTERVAL)


def build_notifiers(
    config: Config, *, http: aiohttp.ClientSession, mqtt: Any | None
) -> dict[str, Notifier]:
    """One notifier per configured target, secrets read from their files."""
    notifiers: dict[str, Notifier] = {}
    for index, hook in enumerate(config.notify.webhooks):
        secret = (
            read_secret(hook.secret_file, key_path=f"notify.webhooks[{index}].secret_file")
            if hook.secret_file
            else None
        )
        notifier = WebhookNotifier(hook, index=index, secret=secret, session=http)
        notifiers[notifier.target] = notifier
    for index, target in enumerate(config.notify.apprise):
        if target.url is not None:
            url = target.url
        else:
            assert target.url_file is not None  # The model requires exactly one of them.
            url = read_secret(target.url_file, key_path=f"notify.apprise[{index}].url_file")
        apprise_notifier = AppriseNotifier(target, index=index, url=url)
        notifiers[apprise_notifier.target] = apprise_notifier
    if mqtt is not None and config.notify.mqtt.enabled:
        mqtt_notifier = MqttAlertNotifier(config.notify.mqtt, site=config.site.slug, client=mqtt)
        notifiers[mqtt_notifier.target] = mqtt_notifier
    return notifiers


async def build_alerts(
    config: Config,
    db: Database,
    metrics: Metrics,
    *,
    mqtt: Any | None,
    on_duty: OnDuty | None = None,
    policy: RetryPolicy | None = None,
) -> AlertService:
    """Create the store, outbox and notifiers; nothing runs until :meth:`AlertService.run`."""
    http = aiohttp.ClientSession()
    notifiers = build_notifiers(config, http=http, mqtt=mqtt)
    chooser = TargetChooser(config, notifiers, on_duty=on_duty)
    store = AlertStore(db, site=config.site.name, site_id=config.site.slug, targets=chooser)
    await store.setup()
    outbox = Outbox(
        db,
        notifiers,
        metrics,
        policy=policy or RetryPolicy(give_up_after=config.notify.give_up_after),
    )
    await outbox.setup()
    service = AlertService(store, outbox, Escalator(store, config), http=http, config=config)
    outbox.snapshot_source = service.delivery_snapshot
    store.listeners.append(service.on_change)

    def count(change: AlertChange) -> None:
        alert = change.alert
        metrics.alerts.labels(alert["rule"], alert["severity"], change.action).inc()

    store.listeners.append(count)
    return service
