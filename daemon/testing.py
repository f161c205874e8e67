"""``doorwatch.testing``: drive a site's rules from pytest, on a virtual clock.

A :class:`RuleHarness` runs the configured rules (built-in and custom) exactly as the daemon
does, with the clock under the test's control and alerts kept in memory::

    from doorwatch.testing import RuleHarness

    def test_propped_door_alarms_after_thirty_seconds():
        site = RuleHarness('''
            site: {name: Lincoln High, timezone: America/Chicago}
            doors: [{id: gym-east, held_open_after: 30s}]
            rules: [{type: door_held_open}]
        ''')
        site.door("gym-east").opens()
        site.advance("29s")
        assert site.alerts() == []
        site.advance("1s")
        assert site.alert(rule="door_held_open").severity == "high"
        site.door("gym-east").closes()
        assert site.alerts(state="active") == []

Every event gets ``received_at`` = the harness clock's time; nothing reads the real clock, so
tests need no sleeps and give the same answer every run.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import TypeAdapter, ValidationError

from doorwatch.alerts.model import Alert, AlertState, AlertTransition
from doorwatch.config.base import Duration
from doorwatch.config.models import Config
from doorwatch.config.references import check_references
from doorwatch.errors import ConfigError
from doorwatch.events import Direction, Event, EventKind, mask_credential
from doorwatch.rules.api import Timer
from doorwatch.rules.config import Severity
from doorwatch.rules.offline import OfflineRules
from doorwatch.state import StateStore

__all__ = ["CameraDriver", "DeviceDriver", "DoorDriver", "RuleHarness"]

_DURATION: TypeAdapter[float] = TypeAdapter(Duration)

# Unless told otherwise a harness starts on a school-day morning (Monday 5 January 2026,
# 10:00 site time), when schedules are typically open.
DEFAULT_START = "2026-01-05T10:00"


class RuleHarness:
    """A site's rules, a virtual clock and an in-memory alert book, for tests.

    Args:
        config: A :class:`~doorwatch.config.models.Config`, a dict, or YAML text. A dict or
            YAML without ``site`` gets ``{name: Test site}`` (UTC).
        start: When the clock starts: ISO-8601, naive meaning site time. Default
            :data:`DEFAULT_START`.
        base_dir: Where relative custom-rule paths are found (default: the working directory).
    """

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str,
        *,
        start: datetime | str | None = None,
        base_dir: Path | str | None = None,
    ) -> None:
        self.config = _config(config, Path(base_dir) if base_dir is not None else Path.cwd())
        self.zone = ZoneInfo(self.config.site.timezone)
        self._rules = OfflineRules(self.config, start=self._moment(start or DEFAULT_START))
        self._numbers = itertools.count(1)

    # ----- time -----

    @property
    def now(self) -> datetime:
        """The harness clock's time, in UTC."""
        return self._rules.clock.now()

    @property
    def local_now(self) -> datetime:
        """The harness clock's time, in the site's zone."""
        return self.now.astimezone(self.zone)

    def advance(self, duration: float | str | timedelta) -> list[AlertTransition]:
        """Let time pass (``45``, ``"45s"``, ``"5m"``, a timedelta); timers fire on the way."""
        seconds = (
            duration.total_seconds()
            if isinstance(duration, timedelta)
            else _DURATION.validate_python(duration)
        )
        return self._rules.advance(seconds)

    def at(self, moment: datetime | str) -> list[AlertTransition]:
        """Set the clock to a moment (naive ISO text is site time: ``"2026-12-25T22:00"``).

        Forwards, time passes and timers fire. Backwards, only the wall clock is re-labelled,
        as when NTP steps a clock: pending timers neither fire nor wait longer.
        """
        return self._rules.set_wall(self._moment(moment))

    # ----- input -----

    def door(
        self, door_id: str, *, source: str | None = None, device: str | None = None
    ) -> DoorDriver:
        """Events at a configured door, as its controller would send them."""
        ref: str | None = None
        for controller in self.config.controllers:
            for key, value in controller.doors.items():
                if value == door_id and ref is None:
                    ref, source = key, source or controller.id
        return DoorDriver(self, door=door_id, ref=ref, source=source or "harness", device=device)

    def unmapped_door(self, ref: str, *, source: str, device: str | None = None) -> DoorDriver:
        """Events at a door the config does not map: ``door`` is null, ``door_ref`` is set."""
        return DoorDriver(self, door=None, ref=ref, source=source, device=device)

    def device(self, device: str, *, source: str | None = None) -> DeviceDriver:
        """Events about a controller or sensor (``source`` defaults to a controller id)."""
        if source is None:
            ids = [c.id for c in self.config.controllers]
            source = device if device in ids or not ids else ids[0]
        return DeviceDriver(self, device=device, source=source)

    def camera(self, camera: str) -> CameraDriver:
        """Events from a camera."""
        return CameraDriver(self, camera=camera)

    def emit(self, kind: EventKind | str, **fields: Any) -> list[AlertTransition]:
        """Send any event now; fields are the canonical ones (``source`` defaults)."""
        credential = fields.pop("credential", None)
        direction = fields.pop("direction", None)
        event = Event(
            kind=EventKind(kind),
            source=fields.pop("source", "harness"),
            credential=mask_credential(credential),
            direction=Direction(direction) if direction else None,
            received_at=fields.pop("received_at", self.now),
            dedupe_key=fields.pop("dedupe_key", f"harness:{next(self._numbers)}"),
            **fields,
        )
        return self.feed(event)

    def feed(self, event: Event) -> list[AlertTransition]:
        """Send a ready-made event (the clock first moves on to its ``received_at``)."""
        return self._rules.feed(event)

    # ----- people -----

    def acknowledge(
        self, alert_id: str, *, by: str = "guard", note: str | None = None
    ) -> list[AlertTransition]:
        """A person acknowledges an alert now."""
        return self._rules.acknowledge(alert_id, by=by, note=note)

    # ----- what happened -----

    @property
    def transitions(self) -> list[AlertTransition]:
        """Every alert transition so far, in order."""
        return list(self._rules.transitions)

    def actions(self) -> list[tuple[str, str]]:
        """The transitions so far as ``(action, rule)`` pairs: compact to assert on."""
        return [(t.action.value, t.alert.rule) for t in self._rules.transitions]

    def alerts(
        self,
        *,
        rule: str | None = None,
        state: AlertState | str | None = None,
        door: str | None = None,
        camera: str | None = None,
        severity: Severity | str | None = None,
    ) -> list[Alert]:
        """Alerts matching every given filter (``rule`` matches an instance id or a type)."""
        found = self._rules.book.alerts(rule=rule, state=state, door=door, camera=camera)
        if severity is not None:
            found = [a for a in found if a.severity is Severity(severity)]
        return found

    def alert(self, **filters: Any) -> Alert:
        """The one alert matching the filters of :meth:`alerts`; AssertionError otherwise."""
        found = self.alerts(**filters)
        if len(found) != 1:
            listing = "; ".join(f"{a.rule} {a.subject} {a.state}" for a in self.alerts()) or "none"
            raise AssertionError(
                f"expected one alert matching {filters}, found {len(found)} (all: {listing})"
            )
        return found[0]

    @property
    def timers(self) -> list[Timer]:
        """The rules' pending timers, soonest first."""
        return self._rules.engine.timers

    @property
    def state(self) -> StateStore:
        """Door and device state as the rules see it."""
        return self._rules.state

    # ----- internals -----

    def _moment(self, value: datetime | str) -> datetime:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment


class _Driver:
    """Common to the drivers: send an event on behalf of something at the site."""

    def __init__(self, site: RuleHarness) -> None:
        self.site = site

    def _defaults(self) -> dict[str, Any]:
        raise NotImplementedError

    def event(self, kind: EventKind | str, **fields: Any) -> list[AlertTransition]:
        """Send an event of any kind from here; return the transitions it caused."""
        return self.site.emit(kind, **{**self._defaults(), **fields})


class DoorDriver(_Driver):
    """Events at one door; each method returns the driver, so calls chain.

    Every method takes the canonical event fields as keywords too (``replayed=True``,
    ``dedupe_key="..."``, ``reason="..."``).
    """

    def __init__(
        self,
        site: RuleHarness,
        *,
        door: str | None,
        ref: str | None,
        source: str,
        device: str | None,
    ) -> None:
        super().__init__(site)
        self.door, self.ref, self.source, self.device = door, ref, source, device

    def _defaults(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "device": self.device,
            "door": self.door,
            "door_ref": self.ref,
        }

    def _send(self, kind: EventKind, **fields: Any) -> DoorDriver:
        self.event(kind, **fields)
        return self

    def opens(self, **fields: Any) -> DoorDriver:
        """The door contact opens."""
        return self._send(EventKind.DOOR_OPENED, **fields)

    def closes(self, **fields: Any) -> DoorDriver:
        """The door contact closes."""
        return self._send(EventKind.DOOR_CLOSED, **fields)

    def badge(
        self,
        holder: str | None = None,
        *,
        credential: str | int | None = None,
        granted: bool = True,
        **fields: Any,
    ) -> DoorDriver:
        """A card at the reader (the number is masked as an adapter would)."""
        kind = EventKind.ACCESS_GRANTED if granted else EventKind.ACCESS_DENIED
        return self._send(kind, holder=holder, credential=credential, **fields)

    def denied(
        self, holder: str | None = None, *, credential: str | int | None = None, **fields: Any
    ) -> DoorDriver:
        """A card refused at the reader."""
        return self.badge(holder, credential=credential, granted=False, **fields)

    def duress(self, holder: str | None = None, **fields: Any) -> DoorDriver:
        """A duress code entered."""
        return self._send(EventKind.ACCESS_DURESS, holder=holder, **fields)

    def exit_request(self, **fields: Any) -> DoorDriver:
        """The exit button (REX) pressed."""
        return self._send(EventKind.EXIT_REQUEST, **fields)

    def forced(self, **fields: Any) -> DoorDriver:
        """The controller's own forced-open alarm."""
        return self._send(EventKind.DOOR_FORCED, **fields)

    def held_open(self, **fields: Any) -> DoorDriver:
        """The controller's own held-open alarm."""
        return self._send(EventKind.DOOR_HELD_OPEN, **fields)

    def held_warning(self, **fields: Any) -> DoorDriver:
        """The controller's own held-open pre-alarm."""
        return self._send(EventKind.DOOR_HELD_WARNING, **fields)

    def unlocked(self, **fields: Any) -> DoorDriver:
        """The lock released (a schedule or a remote unlock)."""
        return self._send(EventKind.DOOR_UNLOCKED, **fields)

    def locked(self, **fields: Any) -> DoorDriver:
        """The lock engaged."""
        return self._send(EventKind.DOOR_LOCKED, **fields)


class DeviceDriver(_Driver):
    """Events about one controller or sensor; methods chain."""

    def __init__(self, site: RuleHarness, *, device: str, source: str) -> None:
        super().__init__(site)
        self.device, self.source = device, source

    def _defaults(self) -> dict[str, Any]:
        return {"source": self.source, "device": self.device}

    def goes_offline(self, **fields: Any) -> DeviceDriver:
        """The device is reported offline."""
        self.event(EventKind.DEVICE_OFFLINE, **fields)
        return self

    def comes_online(self, **fields: Any) -> DeviceDriver:
        """The device is reported online."""
        self.event(EventKind.DEVICE_ONLINE, **fields)
        return self

    def heartbeat(self, **fields: Any) -> DeviceDriver:
        """The device's heartbeat."""
        self.event(EventKind.DEVICE_HEARTBEAT, **fields)
        return self


class CameraDriver(_Driver):
    """Events from one camera; methods chain."""

    def __init__(self, site: RuleHarness, *, camera: str) -> None:
        super().__init__(site)
        self.camera = camera

    def _defaults(self) -> dict[str, Any]:
        return {"source": self.camera, "device": self.camera, "camera": self.camera}

    def tampered(self, **fields: Any) -> CameraDriver:
        """The camera reports tampering."""
        self.event(EventKind.CAMERA_TAMPER, **fields)
        return self

    def tamper_cleared(self, **fields: Any) -> CameraDriver:
        """The camera's tamper condition is over."""
        self.event(EventKind.CAMERA_TAMPER_CLEARED, **fields)
        return self

    def goes_offline(self, **fields: Any) -> CameraDriver:
        """The camera stops answering."""
        self.event(EventKind.DEVICE_OFFLINE, **fields)
        return self

    def comes_online(self, **fields: Any) -> CameraDriver:
        """The camera answers again."""
        self.event(EventKind.DEVICE_ONLINE, **fields)
        return self

    def motion(self, **fields: Any) -> CameraDriver:
        """The camera sees motion."""
        self.event(EventKind.CAMERA_MOTION, **fields)
        return self


def _config(config: Config | Mapping[str, Any] | str, base_dir: Path) -> Config:
    if isinstance(config, Config):
        return config
    data: Any = yaml.safe_load(textwrap.dedent(config)) if isinstance(config, str) else dict(config)
    if not isinstance(data, dict):
        raise ConfigError("a harness config is a mapping of sections (site:, doors:, rules:)")
    data.setdefault("site", {"name": "Test site"})
    try:
        parsed = Config.model_validate(data, context={"base_dir": base_dir.resolve()})
    except ValidationError as exc:
        raise ConfigError(f"harness config: {exc}") from None
    problems = check_references(parsed)
    if problems:
        raise ConfigError("harness config: " + "; ".join(f"{p.loc}: {p.message}" for p in problems))
    return parsed
