"""The ``axis`` codec: Axis devices' MQTT event bridge (door controllers and cameras).

Axis devices publish each event as JSON on ``<deviceTopicPrefix>/event/<event topic>``, where
the prefix defaults to ``axis/<serial>``::

    {"topic": "onvif:Door/State/DoorAlarm", "timestamp": 1785325150144,
     "message": {"source": {"DoorToken": "Axis-00408c184bdb:1352121495.979065000"},
                 "key": {}, "data": {"State": "DoorForcedOpen"}}}

``timestamp`` is epoch milliseconds in UTC from an NTP-synced device, so it is the one
trustworthy ``device_time`` among the door sources. Every value in ``source``/``key``/``data``
is a string (``"1"``/``"0"`` for booleans). Namespace prefixes (``onvif:``, ``axis:``,
``tns1:``, ``tnsaxis:``) are dropped before matching. The device is the serial from the payload
(``serial``/``serialNumber``, when ``includeSerialNumberInPayload`` is on), else the topic level
before ``/event/`` (the serial with the default prefix).

==============================================  ================================================
event topic, data                               kind, door reference
==============================================  ================================================
``Door/State/DoorPhysicalState`` Open/Closed    ``door.opened`` / ``door.closed``, ``DoorToken``
``Door/State/DoorAlarm`` DoorForcedOpen         ``door.forced``
``Door/State/DoorAlarm`` DoorOpenTooLong        ``door.held_open``
``Door/State/DoorAlarm`` Normal                 ``door.alarm_cleared``
``Door/State/DoorWarning`` active               ``door.held_warning`` (its end is no event: the
                                                door closed, or the held-open alarm took over)
``Door/State/DoorMode``                         Locked/DoubleLocked/LockedDown/Blocked:
                                                ``door.locked``; Unlocked/LockedOpen/Accessed:
                                                ``door.unlocked``
``Door/State/LockPhysicalState``                ``door.locked`` / ``door.unlocked``
``Door/State/DoorTamper``, ``DoorFault``        ``input.active`` / ``input.inactive``, reason
                                                ``door tamper`` / ``door fault``
``AccessControl/AccessGranted/...``             ``access.granted``, ``AccessPointToken``; holder
                                                ``CredentialHolderName``; masked credential
``AccessControl/Denied/...``                    ``access.denied`` (the sub-topic as reason)
``Credential/State/ApbViolation``               ``access.denied``, reason ``anti-passback``
``AccessControl/Duress``                        ``access.duress``
``IdPoint/Request/REX``                         ``exit.request``, ``IdPointToken``
``IdPoint/Tampering``, ``Device/Casing/Open``   ``input.active`` / ``input.inactive`` (device
                                                tamper, not a forced door)
``Device/IO/Port``, ``Device/IO/VirtualInput``  ``input.active`` / ``input.inactive``, the port
                                                number as door reference (``"1"``)
``Device/Sensor/PIR``                           ``camera.motion`` / ``camera.motion_stopped``
``Device/Status/SystemReady`` ready             ``device.online``
other topics (analytics, AccessTaken...)        no event (each new topic is logged once)
==============================================  ================================================

Port numbers repeat from device to device: a controller entry whose ``doors:`` maps ports
should subscribe to one device (``axis/<serial>/#``). Dedupe key
``axis:<serial>:<hash of topic, source, timestamp, data>``: stable across redeliveries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from doorwatch.adapters.mqtt.codecs._support import (
    MAX_ID_CHARS,
    build_event,
    cap,
    digest,
    get_object,
    get_str,
    parse_flag,
    scalar_text,
    wrong_type,
)
from doorwatch.adapters.mqtt.codecs.base import (
    Codec,
    ControllerOptions,
    InboundMessage,
    json_object,
    register_codec,
)
from doorwatch.events import Event, EventKind, mask_credential

log = structlog.get_logger(__name__)


class AxisOptions(ControllerOptions):
    """Axis door controllers or cameras using the built-in MQTT event bridge."""

    codec: Literal["axis"]


@dataclass(frozen=True, slots=True)
class _Axis:
    """One Axis event, flattened: topic without namespaces, string maps, device and time."""

    topic: str
    source: dict[str, str]
    data: dict[str, str]
    device: str
    device_time: datetime | None

    def first(self, *names: str, data: bool = True) -> str | None:
        """The first of ``names`` present in ``data`` (or ``source``), compared without case."""
        values = self.data if data else self.source
        lowered = {key.lower(): value for key, value in values.items()}
        for name in names:
            value = lowered.get(name.lower())
            if value is not None:
                return value
        return None


# One result of a handler: kind, door reference, reason, and optional holder and credential.
@dataclass(frozen=True, slots=True)
class _Result:
    kind: EventKind
    door_ref: str | None = None
    reason: str | None = None
    holder: str | None = None
    credential: str | None = None


_Handler = Callable[[_Axis], _Result | None]

# Door modes (ONVIF DoorMode) that keep the door shut, and those that leave it free.
_LOCKED_MODES = frozenset({"locked", "doublelocked", "lockeddown", "blocked"})
_UNLOCKED_MODES = frozenset({"unlocked", "lockedopen", "accessed"})
# Tamper and fault states that mean "detected" (ONVIF TamperDetected / FaultDetected).
_DETECTED = frozenset({"tamperdetected", "faultdetected", "tampering", "fault"})
_NOT_DETECTED = frozenset({"notintamper", "notinfault", "normal"})
# Epoch milliseconds beyond 9999-12-31 cannot be a clock.
_MAX_EPOCH_MS = 253_402_300_799_999
# Topics seen and ignored, logged once each; bounded so a sprayer cannot grow it.
_MAX_IGNORED_SEEN = 1_000


def _door_token(event: _Axis) -> str | None:
    return event.first("DoorToken", data=False)


def _state(event: _Axis) -> str:
    return (event.first("State", "state", "Value") or "").strip()


def _physical_state(event: _Axis) -> _Result | None:
    state = _state(event)
    kind = {"open": EventKind.DOOR_OPENED, "closed": EventKind.DOOR_CLOSED}.get(
        state.lower(), EventKind.UNKNOWN
    )
    return _Result(kind, _door_token(event), cap(f"DoorPhysicalState {state}"))


def _door_alarm(event: _Axis) -> _Result | None:
    state = _state(event)
    kind = {
        "dooropentoolong": EventKind.DOOR_HELD_OPEN,
        "doorforcedopen": EventKind.DOOR_FORCED,
        "normal": EventKind.DOOR_ALARM_CLEARED,
    }.get(state.lower(), EventKind.UNKNOWN)
    return _Result(kind, _door_token(event), cap(f"DoorAlarm {state}"))


def _door_warning(event: _Axis) -> _Result | None:
    state = _state(event)
    active = parse_flag(state)
    if active is None:
        active = state.lower() not in {"normal", ""}
    if not active:
        return None
    return _Result(EventKind.DOOR_HELD_WARNING, _door_token(event), cap(f"DoorWarning {state}"))


def _door_mode(event: _Axis) -> _Result | None:
    mode = _state(event)
    if mode.lower() in _LOCKED_MODES:
        return _Result(EventKind.DOOR_LOCKED, _door_token(event), cap(f"DoorMode {mode}"))
    if mode.lower() in _UNLOCKED_MODES:
        return _Result(EventKind.DOOR_UNLOCKED, _door_token(event), cap(f"DoorMode {mode}"))
    return None


def _lock_state(event: _Axis) -> _Result | None:
    state = _state(event).lower()
    if state == "locked":
        return _Result(EventKind.DOOR_LOCKED, _door_token(event), "LockPhysicalState Locked")
    if state == "unlocked":
        return _Result(EventKind.DOOR_UNLOCKED, _door_token(event), "LockPhysicalState Unlocked")
    return None


def _detected(what: str, token: Callable[[_Axis], str | None]) -> _Handler:
    def handle(event: _Axis) -> _Result | None:
        state = _state(event)
        active = parse_flag(state)
        if active is None and state.lower() in _DETECTED:
            active = True
        elif active is None and state.lower() in _NOT_DETECTED:
            active = False
        if active is None:
            return None
        kind = EventKind.INPUT_ACTIVE if active else EventKind.INPUT_INACTIVE
        return _Result(kind, token(event), cap(f"{what} {state}"))

    return handle


def _no_door(_event: _Axis) -> str | None:
    return None


def _access(kind: EventKind, reason: str | None = None) -> _Handler:
    def handle(event: _Axis) -> _Result | None:
        holder = event.first("CredentialHolderName")
        credential = event.first("CredentialToken", "Card", "IdData")
        return _Result(
            kind,
            event.first("AccessPointToken", "IdPointToken", "DoorToken", data=False),
            reason or cap("/".join(event.topic.split("/")[1:])),
            cap(holder) if holder else None,
            mask_credential(cap(credential, 64)) if credential else None,
        )

    return handle


def _rex(event: _Axis) -> _Result | None:
    token = event.first("IdPointToken", "AccessPointToken", "DoorToken", data=False)
    return _Result(EventKind.EXIT_REQUEST, token, "REX")


def _port(event: _Axis) -> _Result | None:
    active = parse_flag(_state(event))
    if active is None:
        return None
    port = event.first("port", data=False)
    kind = EventKind.INPUT_ACTIVE if active else EventKind.INPUT_INACTIVE
    return _Result(kind, cap(port, MAX_ID_CHARS) if port else None, f"port {port or '?'}")


def _pir(event: _Axis) -> _Result | None:
    active = parse_flag(_state(event))
    if active is None:
        return None
    sensor = event.first("sensor", data=False) or "?"
    kind = EventKind.CAMERA_MOTION if active else EventKind.CAMERA_MOTION_STOPPED
    return _Result(kind, None, cap(f"PIR sensor {sensor}"))


def _system_ready(event: _Axis) -> _Result | None:
    ready = parse_flag(event.first("ready", "State") or "")
    return _Result(EventKind.DEVICE_ONLINE, None, "system ready") if ready else None


# Exact topics (namespaces dropped) and their handlers; matched without case, because Axis
# spells some levels both ways (Status/Systemready, Status/SystemReady).
_TOPICS_AS_DOCUMENTED: dict[str, _Handler] = {
    "Door/State/DoorPhysicalState": _physical_state,
    "Door/State/DoorAlarm": _door_alarm,
    "Door/State/DoorWarning": _door_warning,
    "Door/State/DoorMode": _door_mode,
    "Door/State/LockPhysicalState": _lock_state,
    "Door/State/DoorTamper": _detected("door tamper", _door_token),
    "Door/State/DoorFault": _detected("door fault", _door_token),
    "AccessControl/Duress": _access(EventKind.ACCESS_DURESS, "duress"),
    "Credential/State/ApbViolation": _access(EventKind.ACCESS_DENIED, "anti-passback"),
    "IdPoint/Request/REX": _rex,
    "IdPoint/Tampering": _detected("reader tamper", _no_door),
    "Device/Casing/Open": _detected("casing open", _no_door),
    "Device/IO/Port": _port,
    "Device/IO/VirtualInput": _port,
    "Device/Sensor/PIR": _pir,
    "Device/Status/SystemReady": _system_ready,
}
# Topic families matched by their first two levels (the rest says which variant).
_FAMILIES_AS_DOCUMENTED: dict[str, _Handler] = {
    "AccessControl/AccessGranted": _access(EventKind.ACCESS_GRANTED),
    "AccessControl/Denied": _access(EventKind.ACCESS_DENIED),
}
_TOPICS = {topic.lower(): handler for topic, handler in _TOPICS_AS_DOCUMENTED.items()}
_FAMILIES = {topic.lower(): handler for topic, handler in _FAMILIES_AS_DOCUMENTED.items()}


@register_codec("axis")
class AxisCodec(Codec[AxisOptions]):
    """Decodes Axis MQTT event bridge messages."""

    def __init__(self, options: AxisOptions) -> None:
        super().__init__(options)
        self._ignored_seen: set[str] = set()

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the event in one Axis event message."""
        levels = message.topic.split("/")
        if levels[-1] == "connection" and len(levels) > 1 and levels[-2] == "event":
            return []  # The device's own connect/disconnect announcements, format unknown.
        data = json_object(message.payload)
        event = self._flatten(data, levels)
        lowered = event.topic.lower()
        handler = _TOPICS.get(lowered) or _FAMILIES.get("/".join(lowered.split("/")[:2]))
        if handler is None:
            self._ignored(event.topic)
            return []
        result = handler(event)
        if result is None:
            return []
        timestamp = data.get("timestamp")
        key = digest(
            event.topic, sorted(event.source.items()), timestamp, sorted(event.data.items())
        )
        return [
            build_event(
                result.kind,
                message,
                source=self.options.id,
                device=event.device,
                door_ref=result.door_ref,
                credential=result.credential,
                holder=result.holder,
                reason=result.reason,
                device_time=event.device_time,
                dedupe_key=f"axis:{event.device}:{key}",
            )
        ]

    def _flatten(self, data: dict[str, Any], levels: list[str]) -> _Axis:
        topic = get_str(data, "topic", limit=MAX_ID_CHARS)
        if topic is None:
            # appendEventTopic puts the event topic in the MQTT topic after "/event/", with
            # namespaces as levels of their own (tns:onvif/Device/tns:axis/IO/Port).
            event_levels = "/".join(_after_event(levels)).split("/$source")[0].split("/")
            topic = "/".join(level for level in event_levels if not level.startswith("tns:"))
        body = get_object(data, "message") or {}
        source = _string_map(body, "source")
        payload_data = _string_map(body, "data")
        _string_map(body, "key")  # Validated for shape; the key map carries nothing we use.
        serial = get_str(data, "serial", limit=MAX_ID_CHARS) or get_str(
            data, "serialNumber", limit=MAX_ID_CHARS
        )
        return _Axis(
            topic=_strip_namespaces(topic),
            source=source,
            data=payload_data,
            device=serial or _device_from_topic(levels),
            device_time=_device_time(data.get("timestamp")),
        )

    def _ignored(self, topic: str) -> None:
        if topic in self._ignored_seen or len(self._ignored_seen) >= _MAX_IGNORED_SEEN:
            return
        self._ignored_seen.add(topic)
        log.info("axis event topic ignored", source=self.options.id, topic=cap(topic, 120))


def _string_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = get_object(body, key, where="message.")
    if value is None:
        return {}
    # Event maps hold a few keys; a thousand is a broken or hostile payload.
    if len(value) > 1_000:  # noqa: PLR2004
        raise wrong_type(f"message.{key}", "a small object", value)
    return {
        cap(name, 64): scalar_text(item, f"message.{key}.{cap(name, 32)}")
        for name, item in value.items()
    }


def _strip_namespaces(topic: str) -> str:
    return "/".join(level.rpartition(":")[2] for level in topic.split("/") if level)


def _after_event(levels: list[str]) -> list[str]:
    if "event" in levels:
        return levels[levels.index("event") + 1 :]
    return levels


def _device_from_topic(levels: list[str]) -> str:
    if "event" in levels:
        index = levels.index("event")
        if index > 0:
            return cap(levels[index - 1], MAX_ID_CHARS)
    return "axis"


def _device_time(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type("timestamp", "a number of milliseconds", value)
    if not 0 < value <= _MAX_EPOCH_MS:
        return None
    return datetime.fromtimestamp(value / 1000, UTC)
