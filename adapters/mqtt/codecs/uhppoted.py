"""The ``uhppoted`` codec: uhppoted-mqtt events and its system (health-check) messages.

uhppoted-mqtt bridges UHPPOTE UT0311-L0x controllers onto MQTT. It publishes:

* events on ``<root>/events/live`` (as they happen) and ``<root>/events`` (the feed, which
  also catches up on what happened while the bridge was down), wrapped in an envelope::

      {"message": {"event": {"event": {"device-id": 405419896, "event-id": 69, ...}}},
       "hmac": "<hex HMAC-SHA256 of the message JSON>"}

  (the double ``event`` nesting is uhppoted's own); signing and encryption must be turned off
  in ``uhppoted.conf`` (``mqtt.security.outgoing.sign/encrypt = false``); an encrypted event is
  refused with a clear reason. With ``hmac_key_file`` set, the HMAC is checked over the exact
  bytes of ``message`` and a message without a matching one is refused.
* ``{"alive": {"subsystem": ..., "message": "OK"}}`` and ``{"alert": {...}}`` on
  ``<root>/system`` (bare or in the same envelope under ``message.system``).

Event-type/reason codes and the canonical kind each becomes:

=====  ====================================  ===============================================
code   uhppoted text                         kind
=====  ====================================  ===============================================
1-3    swipe, swipe open, swipe close        ``access.granted`` / ``access.denied`` by the
                                             ``access-granted`` flag
5      swipe:denied (system)                 ``access.denied``
6      no access rights                      ``access.denied``
7      incorrect password                    ``access.denied``
8      anti-passback                         ``access.denied``
9      more cards                            ``access.denied``
10     first card open                       by the ``access-granted`` flag
11     door is normally closed               ``access.denied``
12     interlock                             ``access.denied``
13     not in allowed time period            ``access.denied``
15     invalid timezone                      ``access.denied``
18     access denied                         ``access.denied``
20     push button ok                        ``exit.request`` (REX)
23     door opened                           ``door.opened``
24     door closed                           ``door.closed``
25     door opened (supervisor password)     ``access.granted`` (no credential: it is a PIN)
28     controller power on                   ``device.online`` (no door)
29     controller reset                      ``device.online`` (no door)
31-34  pushbutton invalid (locked, offline,  ``access.denied``: an exit request the
       interlock, threat)                    controller refused; it must not shunt a
                                             forced-open alarm the way ``exit.request`` does
37     door open too long                    ``door.held_open``
38     forced open                           ``door.forced``
39     fire                                  ``input.active``
40     forced closed                         ``door.locked``
41     theft prevention                      ``input.active``
42     24x7 zone                             ``input.active``
43     emergency                             ``input.active``
44     remote open door                      ``access.granted``: an authorised release by
45     remote open door (USB reader)         software, so it shunts forced-open like a swipe
other  (event-type 1)                        by the ``access-granted`` flag
other  (event-type 2 or 3)                   ``unknown``, reason kept
=====  ====================================  ===============================================

Event types 0 (none) and 255 (overwritten) carry no occurrence and give no event.

Fields: ``device`` is the controller serial, the door reference ``"<device-id>:<door-id>"``,
``direction`` comes from ``direction`` (1 in, 2 out) on access and exit events, the card number
is masked and only kept on access events, and the dedupe key is
``uhppoted:<device-id>:<event-id>``, the same on ``events`` and ``events/live`` so an event
seen on both is journaled once. An event id at or below the highest seen for its controller is
backlog (the feed lags live) and is marked replayed; a jump over missing ids is logged once.

``timestamp`` is the controller's own clock, formatted by the bridge with the *bridge host's*
zone abbreviation, so the label cannot be trusted: ``device_time`` stays null unless
``device_timezone`` names the zone the controllers' clocks keep (``UTC`` when they run on UTC).

System messages: ``alive`` is a ``device.heartbeat`` of the bridge itself (device
``bridge_id``, by default the topic without ``/system``). ``alert`` messages about a controller
(``UTC0311-L0x <serial> no response for 1m5s`` / ``device not found``) are ``device.offline``,
``... connected`` / ``device present`` are ``device.online``; other alerts (clock not
synchronised, listener address) are ``unknown`` with the text as reason. Repeated online or
offline alerts for the same controller give one event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog
from pydantic import Field

from doorwatch.adapters.mqtt.codecs._support import (
    MAX_ID_CHARS,
    StateMemory,
    build_event,
    cap,
    get_bool,
    get_int,
    get_object,
    get_str,
    type_name,
    wrong_type,
)
from doorwatch.adapters.mqtt.codecs.base import (
    Codec,
    ControllerOptions,
    InboundMessage,
    json_object,
    load_json,
    register_codec,
)
from doorwatch.config.base import ConfigPath, TimeZoneName
from doorwatch.config.secrets import read_secret
from doorwatch.errors import DecodeError
from doorwatch.events import Direction, Event, EventKind, mask_credential

log = structlog.get_logger(__name__)


class UhppotedOptions(ControllerOptions):
    """A uhppoted-mqtt bridge in front of UHPPOTE controllers."""

    codec: Literal["uhppoted"]
    hmac_key_file: ConfigPath | None = Field(
        default=None,
        description="File holding the bridge's HMAC key (mqtt.security.HMAC.key); when set, "
        "messages without a matching hmac are refused.",
    )
    device_timezone: TimeZoneName | None = Field(
        default=None,
        description="IANA zone the controllers' clocks keep (UTC if they run on UTC); "
        "without it device_time stays null, because the bridge labels times with its own zone.",
    )
    bridge_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="Device name of the bridge for alive/alert messages; defaults to the "
        "system topic without /system (uhppoted/gateway).",
    )


_GRANTED = EventKind.ACCESS_GRANTED
_DENIED = EventKind.ACCESS_DENIED
# code -> (uhppoted's text, kind); a kind of None means "by the access-granted flag".
_REASONS: dict[int, tuple[str, EventKind | None]] = {
    1: ("swipe", None),
    2: ("swipe open", None),
    3: ("swipe close", None),
    5: ("swipe:denied (system)", _DENIED),
    6: ("no access rights", _DENIED),
    7: ("incorrect password", _DENIED),
    8: ("anti-passback", _DENIED),
    9: ("more cards", _DENIED),
    10: ("first card open", None),
    11: ("door is normally closed", _DENIED),
    12: ("interlock", _DENIED),
    13: ("not in allowed time period", _DENIED),
    15: ("invalid timezone", _DENIED),
    18: ("access denied", _DENIED),
    20: ("push button ok", EventKind.EXIT_REQUEST),
    23: ("door opened", EventKind.DOOR_OPENED),
    24: ("door closed", EventKind.DOOR_CLOSED),
    25: ("door opened (supervisor password)", _GRANTED),
    28: ("controller power on", EventKind.DEVICE_ONLINE),
    29: ("controller reset", EventKind.DEVICE_ONLINE),
    31: ("pushbutton invalid (door locked)", _DENIED),
    32: ("pushbutton invalid (offline)", _DENIED),
    33: ("pushbutton invalid (interlock)", _DENIED),
    34: ("pushbutton invalid (threat)", _DENIED),
    37: ("door open too long", EventKind.DOOR_HELD_OPEN),
    38: ("forced open", EventKind.DOOR_FORCED),
    39: ("fire", EventKind.INPUT_ACTIVE),
    40: ("forced closed", EventKind.DOOR_LOCKED),
    41: ("theft prevention", EventKind.INPUT_ACTIVE),
    42: ("24x7 zone", EventKind.INPUT_ACTIVE),
    43: ("emergency", EventKind.INPUT_ACTIVE),
    44: ("remote open door", _GRANTED),
    45: ("remote open door (USB reader)", _GRANTED),
}
_SWIPE = 1
# Event types that record no occurrence: 0 "none" and 255 "overwritten" (a log slot reused).
_NO_OCCURRENCE = frozenset({0, 255})
# Reason 25 is a supervisor *password*: whatever sits in card-number must not be kept.
_PIN_REASONS = frozenset({25})
# Events about the controller itself, not one of its doors.
_DEVICE_REASONS = frozenset({28, 29})
_ACCESS_KINDS = frozenset({_GRANTED, _DENIED, EventKind.EXIT_REQUEST})
_DIRECTIONS = {1: Direction.IN, 2: Direction.OUT}
_UINT32_MAX = 2**32 - 1
# A feed lagging behind live can only replay ids the controller still stores; an id this far
# below the highest seen means a replaced or reset controller, whose ids start again.
_ID_RESTART_DROP = 100_000
# Controllers remembered for gap detection; a site has a handful, this only bounds memory.
_MAX_DEVICES = 10_000

# Go's "2006-01-02 15:04:05 MST": the zone label is the bridge host's, so it is ignored.
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?: \S{1,16})?$")
_ALERT = re.compile(r"^\s*UTC0311-L0x\s+(\d{1,10})\s+(.*)$", re.DOTALL)
_OFFLINE_ALERTS = ("no response", "device not found")
_ONLINE_ALERTS = ("connected", "device present")
_JSON = json.JSONDecoder()


@register_codec("uhppoted")
class UhppotedCodec(Codec[UhppotedOptions]):
    """Decodes uhppoted-mqtt event envelopes and system alive/alert messages."""

    def __init__(self, options: UhppotedOptions) -> None:
        super().__init__(options)
        self._hmac_key: bytes | None = None
        if options.hmac_key_file is not None:
            secret = read_secret(
                options.hmac_key_file, key_path=f"controllers[{options.id}].hmac_key_file"
            )
            self._hmac_key = secret.encode()
        self._zone = ZoneInfo(options.device_timezone) if options.device_timezone else None
        self._last_ids: dict[str, int] = {}
        self._liveness = StateMemory()

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the event or system notice in one uhppoted-mqtt message."""
        levels = message.topic.split("/")
        if "requests" in levels or "replies" in levels:
            return []  # The command API shares the root; requests and replies are not events.
        data = json_object(message.payload)
        envelope: dict[str, Any] | None = (
            self._verified_message(data, message.payload)
            if self._hmac_key is not None
            else get_object(data, "message")
        )
        if envelope is not None:
            return self._decode_envelope(envelope, message)
        if "event" in data:
            event = get_object(data, "event", required=True)
            assert event is not None
            inner = event.get("event")
            return self._decode_event(inner if isinstance(inner, dict) else event, message)
        if "alive" in data or "alert" in data:
            return self._decode_system(data, message)
        raise DecodeError("not a uhppoted-mqtt event or system message", kind="malformed")

    # ----- envelope and HMAC -----

    def _verified_message(self, data: dict[str, Any], payload: bytes) -> dict[str, Any]:
        assert self._hmac_key is not None
        given = data.get("hmac")
        if given is None:
            raise DecodeError(
                "message has no hmac, but hmac_key_file is configured", kind="signature"
            )
        if not isinstance(given, str):
            raise DecodeError(
                f"hmac must be a hex string, got {type_name(given)}", kind="signature"
            )
        raw = _raw_member(payload, "message")
        if raw is None:
            raise DecodeError("message has an hmac but no message to verify", kind="signature")
        expected = hmac.new(self._hmac_key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given.strip().lower()):
            raise DecodeError("hmac does not match: wrong key or altered message", kind="signature")
        # Decode exactly the bytes that were verified, so a second "message" key cannot
        # smuggle in content the HMAC never covered.
        verified = load_json(raw)
        if not isinstance(verified, dict):
            raise wrong_type("message", "an object", verified)
        return verified

    def _decode_envelope(self, envelope: dict[str, Any], message: InboundMessage) -> list[Event]:
        for key in ("event", "system"):
            if key not in envelope:
                continue
            body = envelope[key]
            if isinstance(body, str):
                raise DecodeError(
                    f"message.{key} is encrypted; set mqtt.security.outgoing.encrypt = false "
                    "in uhppoted.conf",
                    kind="unsupported",
                )
            if not isinstance(body, dict):
                raise wrong_type(f"message.{key}", "an object", body)
            if key == "system":
                return self._decode_system(body, message)
            inner = body.get("event")
            if isinstance(inner, str):
                raise DecodeError(
                    "message.event.event is encrypted; set mqtt.security.outgoing.encrypt = "
                    "false in uhppoted.conf",
                    kind="unsupported",
                )
            if not isinstance(inner, dict):
                raise wrong_type("message.event.event", "an object", inner)
            return self._decode_event(inner, message)
        if "reply" in envelope or "error" in envelope:
            return []  # A command reply on a subscribed topic.
        raise DecodeError("message holds neither an event nor a system message", kind="malformed")

    # ----- events -----

    def _decode_event(self, event: dict[str, Any], message: InboundMessage) -> list[Event]:
        where = "event."
        device_id = _uint32(event, "device-id", where, required=True)
        event_id = _uint32(event, "event-id", where, required=True)
        event_type = get_int(event, "event-type", where=where) or 0
        code = get_int(event, "event-reason", where=where) or 0
        text = get_str(event, "event-reason-text", where=where)
        granted = get_bool(event, "access-granted", where=where)
        door_id = get_int(event, "door-id", where=where)
        direction = get_int(event, "direction", where=where)
        timestamp = get_str(event, "timestamp", where=where, limit=64)
        card = event.get("card-number")
        if card is not None and (isinstance(card, bool) or not isinstance(card, int | str)):
            raise wrong_type(where + "card-number", "a number", card)
        assert device_id is not None
        assert event_id is not None
        device = str(device_id)
        backlog = self._track_id(device, event_id)
        if event_type in _NO_OCCURRENCE:
            return []
        known_text, kind = _REASONS.get(code, (None, None))
        if kind is None:
            if code in _REASONS or event_type == _SWIPE:
                if granted is None:
                    raise DecodeError(
                        "field event.access-granted is missing on a swipe", kind="malformed"
                    )
                kind = _GRANTED if granted else _DENIED
            else:
                kind = EventKind.UNKNOWN
        reason = cap(text or known_text or f"event-type {event_type} reason {code}")
        keep_card = (
            kind in {_GRANTED, _DENIED} and code not in _PIN_REASONS and card not in (0, "0")
        )
        door_ref = (
            f"{device}:{door_id}"
            if door_id is not None and door_id > 0 and code not in _DEVICE_REASONS
            else None
        )
        return [
            build_event(
                kind,
                message,
                source=self.options.id,
                device=device,
                door_ref=door_ref,
                credential=mask_credential(cap(str(card), 64)) if keep_card else None,
                direction=_DIRECTIONS.get(direction or 0) if kind in _ACCESS_KINDS else None,
                reason=reason,
                device_time=self._device_time(timestamp),
                replayed=backlog,
                dedupe_key=f"uhppoted:{device}:{event_id}",
            )
        ]

    def _track_id(self, device: str, event_id: int) -> bool:
        """Remember the highest event id per controller; True when this one is backlog."""
        last = self._last_ids.get(device)
        if last is None:
            if len(self._last_ids) >= _MAX_DEVICES:
                del self._last_ids[next(iter(self._last_ids))]
            self._last_ids[device] = event_id
            return False
        if event_id <= last:
            if last - event_id < _ID_RESTART_DROP:
                return True
            log.info(
                "uhppoted event ids restarted",
                source=self.options.id,
                device=device,
                previous=last,
                now=event_id,
            )
        elif event_id > last + 1:
            log.warning(
                "uhppoted event gap",
                source=self.options.id,
                device=device,
                after=last,
                next=event_id,
                missing=event_id - last - 1,
            )
        self._last_ids[device] = event_id
        return False

    def _device_time(self, timestamp: str | None) -> datetime | None:
        if self._zone is None or not timestamp:
            return None
        match = _TIMESTAMP.match(timestamp.strip())
        if match is None:
            return None
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            local = datetime(year, month, day, hour, minute, second, tzinfo=self._zone)
        except ValueError:
            return None  # An impossible date (month 13) from a confused controller clock.
        return local.astimezone(UTC)

    # ----- system messages -----

    def _decode_system(self, body: dict[str, Any], message: InboundMessage) -> list[Event]:
        bridge = self.options.bridge_id or _bridge_from_topic(message.topic)
        alive = get_object(body, "alive")
        if alive is not None:
            subsystem = get_str(alive, "subsystem", where="alive.", limit=64) or "-"
            text = get_str(alive, "message", where="alive.") or ""
            return [
                build_event(
                    EventKind.DEVICE_HEARTBEAT,
                    message,
                    source=self.options.id,
                    device=bridge,
                    reason=cap(f"{subsystem}: {text}"),
                    dedupe_key=(f"uhppoted:{bridge}:alive:{subsystem}:{self._liveness.version()}"),
                )
            ]
        alert = get_object(body, "alert")
        if alert is None:
            raise DecodeError("system message is neither alive nor alert", kind="malformed")
        subsystem = get_str(alert, "subsystem", where="alert.", limit=64) or "-"
        text = get_str(alert, "message", where="alert.") or ""
        match = _ALERT.match(text)
        if match is None:
            # Alerts about the bridge itself, e.g. the watchdog finding health-check stalled.
            return [self._unknown_alert(message, bridge, f"{subsystem}: {text}")]
        device, detail = match.group(1), match.group(2).strip()
        lowered = detail.lower()
        if lowered.startswith(_OFFLINE_ALERTS):
            kind = EventKind.DEVICE_OFFLINE
        elif lowered in _ONLINE_ALERTS:
            kind = EventKind.DEVICE_ONLINE
        else:
            return [self._unknown_alert(message, device, detail)]
        state = "online" if kind is EventKind.DEVICE_ONLINE else "offline"
        if self._liveness.change((device,), state) is None:
            return []  # The bridge repeated itself, or the broker redelivered the alert.
        return [
            build_event(
                kind,
                message,
                source=self.options.id,
                device=device,
                reason=cap(detail),
                dedupe_key=f"uhppoted:{device}:{state}:{self._liveness.version()}",
            )
        ]

    def _unknown_alert(self, message: InboundMessage, device: str, text: str) -> Event:
        return build_event(
            EventKind.UNKNOWN,
            message,
            source=self.options.id,
            device=device,
            reason=cap(text),
            dedupe_key=f"uhppoted:{device}:alert:{self._liveness.version()}",
        )


def _uint32(data: dict[str, Any], key: str, where: str, *, required: bool) -> int | None:
    value = get_int(data, key, where=where, required=required)
    if value is not None and not 0 <= value <= _UINT32_MAX:
        raise DecodeError(f"field {where}{key} is out of range for a uint32", kind="wrong_type")
    return value


def _bridge_from_topic(topic: str) -> str:
    root = topic.removesuffix("/system")
    return cap(root or "uhppoted", MAX_ID_CHARS)


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def _raw_member(payload: bytes, name: str) -> bytes | None:
    """The exact bytes of a top-level member's value (the first one of that name)."""
    try:
        text = payload.decode("utf-8")
        index = _skip_space(text, 0)
        if text[index : index + 1] != "{":
            return None
        index += 1
        while True:
            index = _skip_space(text, index)
            if text[index : index + 1] != '"':
                return None
            key, index = _JSON.raw_decode(text, index)
            index = _skip_space(text, index)
            if text[index : index + 1] != ":":
                return None
            start = _skip_space(text, index + 1)
            _, index = _JSON.raw_decode(text, start)
            if key == name:
                return text[start:index].encode("utf-8")
            index = _skip_space(text, index)
            if text[index : index + 1] != ",":
                return None
            index += 1
    except RecursionError:
        raise DecodeError("JSON nested too deeply", kind="too_deep") from None
    except (UnicodeDecodeError, ValueError):
        raise DecodeError("payload is not a JSON object", kind="malformed") from None
