"""Controller codecs, one module each, registered by name.

Each codec module declares its options model (one arm of the controllers union) and its codec
class side by side; importing the module registers it.
"""

from typing import Annotated

from pydantic import Field

from doorwatch.adapters.mqtt.codecs import (
    axis,
    esp_rfid,
    generic,
    mapping,
    shelly,
    uhppoted,
    zigbee2mqtt,
)
from doorwatch.adapters.mqtt.codecs.base import (
    CODECS,
    Codec,
    ControllerOptions,
    InboundMessage,
    register_codec,
)

# One arm per codec module; pydantic picks the arm by `codec` and reports errors of that arm.
ControllerConfig = Annotated[
    generic.GenericOptions
    | uhppoted.UhppotedOptions
    | esp_rfid.EspRfidOptions
    | zigbee2mqtt.Zigbee2MqttOptions
    | axis.AxisOptions
    | shelly.ShellyOptions
    | mapping.MappingOptions,
    Field(discriminator="codec"),
]

__all__ = [
    "CODECS",
    "Codec",
    "ControllerConfig",
    "ControllerOptions",
    "InboundMessage",
    "register_codec",
]
