"""The ``shelly`` codec: Shelly Door/Window sensors (Gen1 MQTT, plain-string topics).

Topics under ``shellies/<device id>/`` (or a custom prefix; the device is the topic without
the suffix below, and without a leading ``shellies/``):

===========================  ====================  ========================================
suffix                       payload               kind
===========================  ====================  ========================================
``sensor/state``             ``open`` / ``close``  ``door.opened`` / ``door.closed``
``sensor/vibration``         ``1`` / ``0``         ``input.active`` / ``input.inactive``
                                                   (reason ``vibration``: a knock or a pry)
``sensor/battery``           percent               ``device.heartbeat`` (one per wake-up)
``online``                   ``true`` / ``false``  ``device.online``; ``false`` is
                                                   ``device.offline`` only with
                                                   ``online_false_is_offline``
other sensors, ``announce``  no event
===========================  ====================  ========================================

The Door/Window sensor runs on a battery: it sleeps and publishes only when it wakes up (a
change, or a periodic report), and it reports every value again at each wake-up. So only
*changes* of state are events, and the first value seen after doorwatch starts is state
(replayed), not an edge. For the same reason ``online`` is ``false`` between wake-ups as a
matter of course: treating that as offline would raise a device-offline alert every few
minutes, so it is off by default; liveness for these sensors comes from a heartbeat timeout
(the battery report) longer than their wake-up period.

Shelly devices have no real-time clock and send no time: ``device_time`` is always null.
Dedupe keys are ``<source>:<device>:<new state>:<version>`` with a version unique to this run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from doorwatch.adapters.mqtt.codecs._support import (
    MAX_ID_CHARS,
    StateMemory,
    build_event,
    cap,
    parse_flag,
    plain_text,
)
from doorwatch.adapters.mqtt.codecs.base import (
    Codec,
    ControllerOptions,
    InboundMessage,
    register_codec,
)
from doorwatch.errors import DecodeError
from doorwatch.events import Event, EventKind


class ShellyOptions(ControllerOptions):
    """Shelly Door/Window sensors (Gen1 MQTT)."""

    codec: Literal["shelly"]
    online_false_is_offline: bool = Field(
        default=False,
        description="Report online=false as device.offline. Off by default: battery sensors "
        "publish false between wake-ups, which is normal.",
    )


_STATES = {
    "open": EventKind.DOOR_OPENED,
    "close": EventKind.DOOR_CLOSED,
    "closed": EventKind.DOOR_CLOSED,
}
# Battery percent is 0..100; anything else is a broken payload, not a level.
_MAX_PERCENT = 100


@register_codec("shelly")
class ShellyCodec(Codec[ShellyOptions]):
    """Decodes Shelly Door/Window state, vibration, battery and online topics."""

    def __init__(self, options: ShellyOptions) -> None:
        super().__init__(options)
        self._states = StateMemory()

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the events of one Shelly message."""
        levels = message.topic.split("/")
        if levels[-2:] == ["sensor", "state"]:
            return self._door(message, _device(levels, 2))
        if levels[-2:] == ["sensor", "vibration"]:
            return self._vibration(message, _device(levels, 2))
        if levels[-2:] == ["sensor", "battery"]:
            return self._battery(message, _device(levels, 2))
        if levels[-1] == "online" and len(levels) > 1:
            return self._online(message, _device(levels, 1))
        return []  # tilt, lux, temperature, announce, info: not door events.

    def _door(self, message: InboundMessage, device: str) -> list[Event]:
        value = plain_text(message.payload).lower()
        kind = _STATES.get(value)
        if kind is None:
            raise DecodeError("sensor/state must be open or close", kind="malformed")
        state = "open" if kind is EventKind.DOOR_OPENED else "closed"
        return self._changed(message, device, "state", state, kind, reason=f"sensor/state {value}")

    def _vibration(self, message: InboundMessage, device: str) -> list[Event]:
        active = parse_flag(plain_text(message.payload))
        if active is None:
            raise DecodeError("sensor/vibration must be 1 or 0", kind="malformed")
        kind = EventKind.INPUT_ACTIVE if active else EventKind.INPUT_INACTIVE
        state = "vibration" if active else "still"
        return self._changed(message, device, "vibration", state, kind, reason="vibration")

    def _battery(self, message: InboundMessage, device: str) -> list[Event]:
        text = plain_text(message.payload)
        try:
            percent = float(text)
        except ValueError:
            raise DecodeError("sensor/battery must be a number", kind="wrong_type") from None
        if not 0 <= percent <= _MAX_PERCENT:
            raise DecodeError("sensor/battery must be 0 to 100", kind="malformed")
        return [
            build_event(
                EventKind.DEVICE_HEARTBEAT,
                message,
                source=self.options.id,
                device=device,
                reason=f"battery {round(percent)}%",
                dedupe_key=f"{self.options.id}:{device}:heartbeat:{self._states.version()}",
            )
        ]

    def _online(self, message: InboundMessage, device: str) -> list[Event]:
        online = parse_flag(plain_text(message.payload))
        if online is None:
            raise DecodeError("online must be true or false", kind="malformed")
        if not online and not self.options.online_false_is_offline:
            return []  # Asleep between wake-ups: normal for a battery sensor.
        kind = EventKind.DEVICE_ONLINE if online else EventKind.DEVICE_OFFLINE
        state = "online" if online else "offline"
        if self._states.change((device, "online"), state) is None:
            return []
        return [
            build_event(
                kind,
                message,
                source=self.options.id,
                device=device,
                reason=f"online {'true' if online else 'false'}",
                dedupe_key=f"{self.options.id}:{device}:{state}:{self._states.version()}",
            )
        ]

    def _changed(
        self,
        message: InboundMessage,
        device: str,
        aspect: str,
        state: str,
        kind: EventKind,
        *,
        reason: str,
    ) -> list[Event]:
        change = self._states.change((device, aspect), state)
        if change is None:
            return []  # Re-reported at a wake-up: the same state, not a new event.
        return [
            build_event(
                kind,
                message,
                source=self.options.id,
                device=device,
                door_ref=device,
                reason=reason,
                replayed=change.first,
                dedupe_key=f"{self.options.id}:{device}:{state}:{self._states.version()}",
            )
        ]


def _device(levels: list[str], suffix: int) -> str:
    """The device name: the topic without its suffix and without a leading ``shellies/``."""
    prefix = levels[:-suffix]
    if len(prefix) > 1 and prefix[0] == "shellies":
        prefix = prefix[1:]
    return cap("/".join(prefix) or "shelly", MAX_ID_CHARS)
