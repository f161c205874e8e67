"""The ``zigbee2mqtt`` codec: Zigbee door/window contact sensors through Zigbee2MQTT.

Topics under ``base_topic`` (default ``zigbee2mqtt``):

* ``<base>/<friendly name>``: the device state, always JSON. The friendly name may contain
  ``/``; the device name is the topic without ``<base>/``.
* ``<base>/<friendly name>/availability``: ``{"state": "online"}`` (2.x) or plain
  ``online``/``offline`` (1.x legacy payload) -> ``device.online`` / ``device.offline``.
* ``<base>/bridge/state``: the same two forms, for the bridge itself (device ``bridge``).
  Other ``bridge/...`` topics and ``.../set`` / ``.../get`` commands give no event.

Mapping of a state message:

* ``contact: true`` means CLOSED and ``contact: false`` OPEN (the reverse of Home Assistant's
  door class). Only a *change* of ``contact`` is a door event (``door.opened`` /
  ``door.closed``): with ``cache_state`` on, every battery or link-quality report repeats the
  last value. The first value seen after doorwatch starts is emitted as replayed state, because
  Zigbee2MQTT republishes its cache on start-up and that may be hours old.
* ``tamper`` (SNZB-04) is the sensor's casing being opened, not the door being forced: it
  becomes ``input.active`` on the sensor's door reference with reason ``tamper`` (and
  ``input.inactive`` when it ends), so a rule can raise a maintenance or tamper alert without
  claiming a break-in.
* A report that changes neither is a ``device.heartbeat`` of the sensor, with the battery level
  and ``battery low`` (``battery_low: true``) in the reason. That is what lets a heartbeat
  timeout notice a dead sensor. Devices that never reported ``contact`` (lights, plugs on the
  same base topic) give no events at all.

The sensors send no time (``last_seen`` is the bridge's receive time), so ``device_time`` is
always null. There is no event id either: dedupe keys are ``<source>:<device>:<new state>:
<version>``, where the version is ``last_seen`` when the bridge adds it (advanced.last_seen;
stable across redeliveries and restarts, so turn it on) and otherwise a counter unique to this
run. A redelivered message repeats the remembered state and gives no event, while a real second
open gets a new version.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from doorwatch.adapters.mqtt.codecs._support import (
    MAX_ID_CHARS,
    StateMemory,
    build_event,
    cap,
    get_bool,
    get_str,
    plain_text,
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
from doorwatch.errors import DecodeError
from doorwatch.events import Event, EventKind


class Zigbee2MqttOptions(ControllerOptions):
    """A Zigbee2MQTT bridge with door/window contact sensors."""

    codec: Literal["zigbee2mqtt"]
    base_topic: str = Field(
        default="zigbee2mqtt",
        min_length=1,
        description="Zigbee2MQTT's base_topic; device names are the topic without it.",
    )

    @field_validator("base_topic")
    @classmethod
    def _plain_topic(cls, base: str) -> str:
        if "+" in base or "#" in base or base.endswith("/") or base.startswith("/"):
            raise ValueError("base_topic is a topic such as zigbee2mqtt, without wildcards")
        return base


_AVAILABILITY = {"online": EventKind.DEVICE_ONLINE, "offline": EventKind.DEVICE_OFFLINE}
_BRIDGE = "bridge"
_COMMANDS = frozenset({"set", "get"})


@register_codec("zigbee2mqtt")
class Zigbee2MqttCodec(Codec[Zigbee2MqttOptions]):
    """Decodes Zigbee2MQTT contact-sensor state, availability and bridge state."""

    def __init__(self, options: Zigbee2MqttOptions) -> None:
        super().__init__(options)
        self._states = StateMemory()

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the door, tamper, heartbeat or availability events of one message."""
        base = self.options.base_topic
        if not message.topic.startswith(base + "/"):
            raise DecodeError(
                f"topic is not under base_topic {cap(base, 64)!r}; set base_topic",
                kind="malformed",
            )
        rest = message.topic[len(base) + 1 :]
        if rest == "bridge/state":
            return self._availability(message, _BRIDGE)
        if rest.startswith("bridge/"):
            return []  # bridge/info, bridge/devices, bridge/event...: not door events.
        levels = rest.split("/")
        if levels[-1] in _COMMANDS or (len(levels) > 1 and levels[-2] in _COMMANDS):
            return []  # Commands someone sent to a device.
        if levels[-1] == "availability" and len(levels) > 1:
            return self._availability(message, cap("/".join(levels[:-1]), MAX_ID_CHARS))
        if not rest:
            raise DecodeError("topic names no device", kind="malformed")
        return self._state(message, cap(rest, MAX_ID_CHARS))

    def _state(self, message: InboundMessage, device: str) -> list[Event]:
        data = json_object(message.payload)
        contact = get_bool(data, "contact")
        tamper = get_bool(data, "tamper")
        battery_low = get_bool(data, "battery_low")
        battery = _number(data, "battery")
        last_seen = data.get("last_seen")
        seen = None if last_seen is None else scalar_text(last_seen, "last_seen")
        if contact is None and not self._states.known((device, "contact")):
            return []  # Not a contact sensor (or not one yet): nothing about doors.
        events: list[Event] = []
        if contact is not None:
            state = "closed" if contact else "open"
            change = self._states.change((device, "contact"), state)
            if change is not None:
                events.append(
                    self._event(
                        EventKind.DOOR_CLOSED if contact else EventKind.DOOR_OPENED,
                        message,
                        device,
                        state,
                        seen,
                        reason=f"contact {'true' if contact else 'false'}",
                        replayed=change.first,
                    )
                )
        if tamper is not None:
            state = "tamper" if tamper else "tamper-cleared"
            change = self._states.change((device, "tamper"), state)
            # A first "no tamper" is the normal state, not news.
            if change is not None and (tamper or not change.first):
                events.append(
                    self._event(
                        EventKind.INPUT_ACTIVE if tamper else EventKind.INPUT_INACTIVE,
                        message,
                        device,
                        state,
                        seen,
                        reason="tamper",
                        replayed=change.first,
                    )
                )
        if events:
            return events
        parts = [] if battery is None else [f"battery {battery}%"]
        if battery_low:
            parts.append("battery low")
        return [
            self._event(
                EventKind.DEVICE_HEARTBEAT,
                message,
                device,
                "heartbeat",
                seen,
                reason=", ".join(parts) or None,
                door=False,
            )
        ]

    def _availability(self, message: InboundMessage, device: str) -> list[Event]:
        text = message.payload.strip()
        if text.startswith(b"{"):
            state = (get_str(json_object(message.payload), "state", required=True) or "").lower()
        else:
            state = plain_text(message.payload).lower()
        kind = _AVAILABILITY.get(state)
        if kind is None:
            raise DecodeError("availability must be online or offline", kind="malformed")
        if self._states.change((device, "availability"), state) is None:
            return []
        return [
            self._event(
                kind, message, device, state, None, reason=f"availability {state}", door=False
            )
        ]

    def _event(
        self,
        kind: EventKind,
        message: InboundMessage,
        device: str,
        state: str,
        seen: str | None,
        *,
        reason: str | None,
        replayed: bool = False,
        door: bool = True,
    ) -> Event:
        version = cap(seen, 64) if seen else self._states.version()
        return build_event(
            kind,
            message,
            source=self.options.id,
            device=device,
            door_ref=device if door and device != _BRIDGE else None,
            reason=reason,
            replayed=replayed,
            dedupe_key=f"{self.options.id}:{device}:{state}:{version}",
        )


def _number(data: dict[str, Any], key: str) -> int | float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number", value)
    return round(value) if isinstance(value, float) else value
