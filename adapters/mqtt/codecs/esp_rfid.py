"""The ``esp-rfid`` codec: esp-rfid door controllers (ESP8266 RFID/PIN readers).

Topics (``TOPIC`` is the device's configured topic; the suffix decides how a message reads):

* ``TOPIC/send`` (or ``TOPIC`` itself on older firmware): JSON events with a ``type``:

  =======================================  =========================================
  payload                                  kind
  =======================================  =========================================
  ``boot``                                 ``device.online`` (sent on every MQTT
                                           (re)connect, not only at power-on)
  ``heartbeat`` (old firmware:             ``device.heartbeat``
  ``hearthbeat``)
  ``access``, access ``Always``/``Admin``  ``access.granted``
  ``access``, ``Disabled``/``Expired``/    ``access.denied``, the value as reason
  ``Wrong pin code``/``Denied``
  ``access``, ``username: "Button"``       ``exit.request`` (the exit button)
  ``access``, any other access value       ``unknown``, the value as reason
  log ``Door Open`` / ``Door Closed``      ``door.opened`` / ``door.closed``
  log ``Door was tampered!``               ``door.forced`` (opened while locked)
  log ``... max open time!``               ``door.held_open``
  other log lines, command replies         no event (``Unknown rfid tag`` is also an
                                           ``access`` message, which is the event)
  =======================================  =========================================

* ``TOPIC/tag``: the same access message in Home Assistant mode (no ``type``).
* ``TOPIC/io/door`` ``ON``/``OFF`` (HA mode, plain strings): ``door.opened``/``door.closed``;
  ``io/tamper`` ``ON``/``OFF``: ``door.forced``/``door.alarm_cleared``; ``io/doorbell``:
  ``input.active``/``input.inactive``; ``io/lock<n>`` ``LOCKED``/``UNLOCKED``:
  ``door.locked``/``door.unlocked``. Only changes count, and the first value seen after
  doorwatch starts is state (replayed), not an edge: it may be a report made at connect.
* ``TOPIC/avty`` ``online``/``offline`` (HA mode, with the LWT): ``device.online``/``offline``.

Quirks handled: ``isKnown`` is the string ``"true"``/``"false"``; ``access`` and ``doorName``
are a string, or an array with one entry per relay (one event per granted relay, or one denial
at the first door when none was granted); ``uptime`` is a number in heartbeats and the string
``"0"`` in boot messages; ``time`` is 0 until the device has synced its clock.

``device`` is the ``hostname`` (HA topics: the topic without its suffix). The door reference
is ``doorName`` on access events, else the hostname (relays after the first:
``<hostname>:<n>``); door, tamper and lock events name no door, so they use the hostname: map
both spellings when ``doorName`` is set. ``device_time`` is ``time`` when the clock was set.

``uid`` is a card number, masked; in PIN-only mode (option ``pin_only``) it is the PIN itself
and is masked entirely. Dedupe keys follow (hostname, type, time, what): the masked
credential and name, or the log text, never the raw uid. Before the clock is set ``time`` is
0 for every event, so such a key would merge distinct events (every "Door Open" of the
morning); those events get a key unique to this run instead. That cannot double-count: esp-rfid
publishes at QoS 0, so the broker never redelivers them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import Field

from doorwatch.adapters.mqtt.codecs._support import (
    MAX_ID_CHARS,
    StateMemory,
    build_event,
    cap,
    digest,
    get_int,
    get_str,
    plain_text,
    printable,
    wrong_type,
)
from doorwatch.adapters.mqtt.codecs.base import (
    Codec,
    ControllerOptions,
    InboundMessage,
    json_object,
    register_codec,
)
from doorwatch.errors import DecodeError
from doorwatch.events import Event, EventKind, mask_credential
from doorwatch.logs import mask_digits

log = structlog.get_logger(__name__)


class EspRfidOptions(ControllerOptions):
    """esp-rfid readers publishing on their configured topic."""

    codec: Literal["esp-rfid"]
    pin_only: bool = Field(
        default=False,
        description="The readers run in PIN-only mode: uid carries the PIN, so it is masked "
        "entirely.",
    )


_GRANTED_ACCESS = frozenset({"always", "admin"})
_DENIED_ACCESS = frozenset({"disabled", "expired", "wrong pin code", "denied"})
_EXIT_BUTTON = "Button"
# esp-rfid's name for a tag it does not know; it is no holder's name.
_UNKNOWN_HOLDER = "Unknown"
_HEARTBEAT_TYPES = frozenset({"heartbeat", "hearthbeat"})
# A clock before esp-rfid existed (2017) was never set: 0 before NTP, or seconds since boot.
_EARLIEST_CLOCK = 1_483_228_800
# Unix seconds beyond 9999-12-31 cannot be a clock at all.
_LATEST_CLOCK = 253_402_300_799
# Plain values of the HA-mode io topics, and the kinds they become.
_IO_KINDS: dict[str, dict[str, EventKind]] = {
    "door": {"on": EventKind.DOOR_OPENED, "off": EventKind.DOOR_CLOSED},
    "tamper": {"on": EventKind.DOOR_FORCED, "off": EventKind.DOOR_ALARM_CLEARED},
    "doorbell": {"on": EventKind.INPUT_ACTIVE, "off": EventKind.INPUT_INACTIVE},
    "lock": {"locked": EventKind.DOOR_LOCKED, "unlocked": EventKind.DOOR_UNLOCKED},
}
_AVAILABILITY = {"online": EventKind.DEVICE_ONLINE, "offline": EventKind.DEVICE_OFFLINE}
# Log descriptions that are events, matched case-insensitively on a part of the text.
_LOG_KINDS = (
    ("door open", EventKind.DOOR_OPENED),
    ("door closed", EventKind.DOOR_CLOSED),
    ("tampered", EventKind.DOOR_FORCED),
    ("max open time", EventKind.DOOR_HELD_OPEN),
)
# Log lines seen and ignored, remembered so each is logged once; bounded like any memory.
_MAX_IGNORED_SEEN = 1_000


@register_codec("esp-rfid")
class EspRfidCodec(Codec[EspRfidOptions]):
    """Decodes esp-rfid JSON events and its Home Assistant mode plain-string topics."""

    def __init__(self, options: EspRfidOptions) -> None:
        super().__init__(options)
        self._states = StateMemory()
        self._ignored_seen: set[tuple[str, str]] = set()

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the events in one esp-rfid message."""
        levels = message.topic.split("/")
        if levels[0] == "homeassistant" or levels[-1] == "cmd":
            return []  # HA discovery documents and commands sent to the device.
        if len(levels) >= 3 and levels[-2] == "io":  # noqa: PLR2004 - TOPIC/io/<name>.
            return self._decode_io(message, "/".join(levels[:-2]), levels[-1])
        if levels[-1] == "avty":
            return self._decode_availability(message, _prefix(levels, 1))
        data = json_object(message.payload)
        if levels[-1] == "tag":
            return self._decode_access(data, message, _prefix(levels, 1))
        return self._decode_send(data, message, levels)

    def _decode_send(
        self, data: dict[str, Any], message: InboundMessage, levels: list[str]
    ) -> list[Event]:
        fallback = _prefix(levels, 1) if levels[-1] == "send" else cap(message.topic, MAX_ID_CHARS)
        host = get_str(data, "hostname", limit=MAX_ID_CHARS) or fallback
        kind = get_str(data, "type", required=True, limit=64)
        assert kind is not None
        if kind == "access":
            return self._decode_access(data, message, host)
        if kind == "boot" or kind in _HEARTBEAT_TYPES:
            return self._decode_alive(data, message, host, kind)
        if "desc" in data:
            return self._decode_log(data, message, host, kind)
        return []  # Command replies (user lists, config) are not events and are not logged.

    # ----- JSON events -----

    def _decode_alive(
        self, data: dict[str, Any], message: InboundMessage, host: str, kind: str
    ) -> list[Event]:
        uptime = _uptime(data)
        seconds = _clock(data)
        is_boot = kind == "boot"
        reason = "boot" if is_boot else None
        if uptime is not None:
            reason = f"{reason or 'heartbeat'}, uptime {uptime} s"
        return [
            build_event(
                EventKind.DEVICE_ONLINE if is_boot else EventKind.DEVICE_HEARTBEAT,
                message,
                source=self.options.id,
                device=host,
                reason=reason,
                device_time=_utc(seconds),
                dedupe_key=self._key(host, "boot" if is_boot else "heartbeat", seconds),
            )
        ]

    def _decode_access(
        self, data: dict[str, Any], message: InboundMessage, host: str
    ) -> list[Event]:
        accesses = _string_or_list(data, "access", required=True)
        doors = _string_or_list(data, "doorName", required=False)
        known = _is_known(data.get("isKnown"))
        username = get_str(data, "username")
        uid = data.get("uid")
        if uid is not None and (isinstance(uid, bool) or not isinstance(uid, str | int)):
            raise wrong_type("uid", "a string", uid)
        seconds = _clock(data)
        holder = username if known is not False and username != _UNKNOWN_HOLDER else None
        credential = self._credential(uid)

        def door_ref(index: int) -> str:
            if index < len(doors) and doors[index]:
                return cap(doors[index], MAX_ID_CHARS)
            return host if index == 0 else f"{host}:{index + 1}"

        def event(kind: EventKind, index: int, access: str) -> Event:
            exit_request = kind is EventKind.EXIT_REQUEST
            what = digest(credential, holder, access, index)
            return build_event(
                kind,
                message,
                source=self.options.id,
                device=host,
                door_ref=door_ref(index),
                credential=None if exit_request else credential,
                holder=None if exit_request else holder,
                reason=cap(access),
                device_time=_utc(seconds),
                dedupe_key=self._key(host, "access", seconds, what),
            )

        if username == _EXIT_BUTTON:
            return [event(EventKind.EXIT_REQUEST, 0, accesses[0])]
        kinds = [_access_kind(access, known) for access in accesses]
        granted = [i for i, kind in enumerate(kinds) if kind is EventKind.ACCESS_GRANTED]
        if granted:
            # A card opens the relays its holder may use; the others are not refusals.
            return [event(EventKind.ACCESS_GRANTED, i, accesses[i]) for i in granted]
        return [event(kinds[0], 0, accesses[0])]

    def _credential(self, uid: str | int | None) -> str | None:
        text = str(uid).strip() if uid is not None else ""
        if not text:
            return None
        if self.options.pin_only:
            return "****"  # A PIN: not one digit of it is kept.
        return mask_credential(cap(text, 64))

    def _decode_log(
        self, data: dict[str, Any], message: InboundMessage, host: str, kind: str
    ) -> list[Event]:
        desc = get_str(data, "desc", required=True) or ""
        source_part = get_str(data, "src", limit=64) or "-"
        lowered = desc.lower()
        for needle, event_kind in _LOG_KINDS:
            if needle in lowered:
                seconds = _clock(data)
                return [
                    build_event(
                        event_kind,
                        message,
                        source=self.options.id,
                        device=host,
                        door_ref=host,
                        reason=cap(desc),
                        device_time=_utc(seconds),
                        dedupe_key=self._key(host, kind, seconds, digest(desc)),
                    )
                ]
        if (source_part, desc) not in self._ignored_seen and len(
            self._ignored_seen
        ) < _MAX_IGNORED_SEEN:
            self._ignored_seen.add((source_part, desc))
            log.info(
                "esp-rfid log line ignored",
                source=self.options.id,
                device=host,
                src=source_part,
                desc=mask_digits(desc[:80]),  # Free text: a card number must not slip out.
            )
        return []

    def _key(self, host: str, kind: str, seconds: int | None, what: str = "") -> str:
        if seconds is None:
            # Clock not set: time is 0 on every event, so it cannot tell two apart.
            return f"esprfid:{host}:{kind}:{self._states.version()}"
        return f"esprfid:{host}:{kind}:{seconds}" + (f":{what}" if what else "")

    # ----- Home Assistant mode plain strings -----

    def _decode_io(self, message: InboundMessage, device: str, name: str) -> list[Event]:
        device = cap(device, MAX_ID_CHARS) or "esp-rfid"
        group, door_ref = name, device
        if name.startswith("lock") and name[4:].isdigit():
            group = "lock"
            relay = int(name[4:])
            door_ref = device if relay <= 1 else f"{device}:{relay}"
        kinds = _IO_KINDS.get(group)
        if kinds is None:
            return []  # Other io topics (sensors added by newer firmware) are not door events.
        value = plain_text(message.payload).lower()
        kind = kinds.get(value)
        if kind is None:
            raise DecodeError(
                f"io/{printable(name, 32)} value must be one of {', '.join(sorted(kinds))}",
                kind="malformed",
            )
        change = self._states.change((device, name), value)
        if change is None:
            return []
        return [
            build_event(
                kind,
                message,
                source=self.options.id,
                device=device,
                door_ref=door_ref,
                reason=f"io/{name} {value.upper()}",
                replayed=change.first,
                dedupe_key=f"{self.options.id}:{device}:{name}-{value}:{self._states.version()}",
            )
        ]

    def _decode_availability(self, message: InboundMessage, device: str) -> list[Event]:
        value = plain_text(message.payload).lower()
        kind = _AVAILABILITY.get(value)
        if kind is None:
            raise DecodeError("avty value must be online or offline", kind="malformed")
        if self._states.change((device, "avty"), value) is None:
            return []
        return [
            build_event(
                kind,
                message,
                source=self.options.id,
                device=device,
                reason=f"avty {value}",
                dedupe_key=f"{self.options.id}:{device}:{value}:{self._states.version()}",
            )
        ]


def _prefix(levels: list[str], drop: int) -> str:
    return cap("/".join(levels[:-drop]) or "esp-rfid", MAX_ID_CHARS)


def _string_or_list(data: dict[str, Any], key: str, *, required: bool) -> list[str]:
    """A field that is a string, or an array of strings with one entry per relay."""
    value = data.get(key)
    if value is None:
        if required:
            raise DecodeError(f"field {key} is missing", kind="malformed")
        return []
    if isinstance(value, str):
        return [cap(value)]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        # More relays than any esp-rfid board has means a broken payload, not a door list.
        return [cap(v) for v in value[:16]]
    raise wrong_type(key, "a string or a non-empty array of strings", value)


def _is_known(value: object) -> bool | None:
    """``isKnown`` is the string "true"/"false" (a JSON boolean is taken too)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise wrong_type("isKnown", 'the string "true" or "false"', value)


def _access_kind(access: str, known: bool | None) -> EventKind:
    word = access.strip().lower()
    if known is False or word in _DENIED_ACCESS:
        return EventKind.ACCESS_DENIED
    if word in _GRANTED_ACCESS:
        return EventKind.ACCESS_GRANTED
    return EventKind.UNKNOWN


def _uptime(data: dict[str, Any]) -> int | None:
    """``uptime`` is a number in heartbeats and the string "0" in boot messages."""
    value = data.get("uptime")
    if value is None:
        return None
    if isinstance(value, bool):
        raise wrong_type("uptime", "a number", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()[:18])
    raise wrong_type("uptime", "a number", value)


def _clock(data: dict[str, Any]) -> int | None:
    """The device's Unix time, or None when its clock was never set."""
    seconds = get_int(data, "time")
    if seconds is None or not _EARLIEST_CLOCK <= seconds <= _LATEST_CLOCK:
        return None
    return seconds


def _utc(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
