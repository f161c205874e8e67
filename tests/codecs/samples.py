"""Published payload samples for the codec tests, and small helpers to decode them.

Samples marked verbatim are copied from the sources named beside them (project docs, READMEs,
issue threads); the others are shapes built from the same sources' code and event lists.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import TypeAdapter

from doorwatch.adapters.mqtt.codecs import CODECS, Codec, ControllerConfig, InboundMessage
from doorwatch.events import Event

RECEIVED = datetime(2026, 3, 2, 14, 30, 0, tzinfo=UTC)

# ----- uhppoted-mqtt -----

# Verbatim: the event object of the get-status reply example (documentation/commands/get-status.md).
UHPPOTED_GET_STATUS_EVENT: dict[str, Any] = {
    "access-granted": True,
    "card-number": 8165537,
    "device-id": 0,
    "direction": 1,
    "direction-text": "in",
    "door-id": 1,
    "event-id": 69,
    "event-reason": 44,
    "event-reason-text": "remote open door",
    "event-type": 2,
    "event-type-text": "door",
    "timestamp": "2021-08-10 10:28:32 PDT",
}
# Verbatim: the event object of the get-event reply example (documentation/commands/get-event.md).
UHPPOTED_GET_EVENT_EVENT: dict[str, Any] = {
    "access-granted": True,
    "card-number": 8165538,
    "device-id": 405419896,
    "direction": 1,
    "direction-text": "in",
    "door-id": 4,
    "event-id": 50,
    "event-reason": 0,
    "event-reason-text": "",
    "event-type": 2,
    "event-type-text": "door",
    "timestamp": "2019-08-09 16:18:55 PDT",
}
UHPPOTED_ALIVE = {"alive": {"subsystem": "health-check", "message": "OK"}}
UHPPOTED_NO_RESPONSE = {
    "alert": {
        "subsystem": "health-check",
        "message": "UTC0311-L0x 405419896 no response for 1m5s",
    }
}
UHPPOTED_CONNECTED = {
    "alert": {"subsystem": "health-check", "message": "UTC0311-L0x 405419896 connected"}
}


def uhppoted_event(**fields: Any) -> dict[str, Any]:
    """A live event from controller 405419896 with some fields changed."""
    base = {
        "access-granted": True,
        "card-number": 8165537,
        "device-id": 405419896,
        "direction": 1,
        "direction-text": "in",
        "door-id": 1,
        "event-id": 69,
        "event-reason": 1,
        "event-reason-text": "swipe",
        "event-type": 1,
        "event-type-text": "card swipe",
        "timestamp": "2026-03-02 08:30:00 CST",
    }
    return {**base, **fields}


def uhppoted_envelope(event: dict[str, Any]) -> bytes:
    """The events feed envelope, signing and encryption off (note the double nesting)."""
    return json.dumps({"message": {"event": {"event": event}}}).encode()


# ----- esp-rfid (verbatim from README-MQTT.md, each on one line) -----

ESP_BOOT = b'{ "type":"boot", "time":1605987212, "uptime":0, "ip":"192.168.1.xxx", "hostname":"your esp-rfid hostname" }'
ESP_HEARTBEAT = b'{ "type":"heartbeat", "time":1605991375, "uptime":999, "ip":"192.168.1.xxx", "hostname":"your esp-rfid hostname" }'
ESP_ACCESS_KNOWN = b'{ "type":"access", "time":1605991375, "isKnown":"true", "access":"the access state", "username":"username", "uid":"token UID", "hostname":"your esp-rfid hostname", "doorName":"your door name" }'
ESP_ACCESS_UNKNOWN = b'{ "type":"access", "time":1605991375, "isKnown":"false", "access":"Denied", "username":"Unknown", "uid":"token UID", "hostname":"your esp-rfid hostname" }'
ESP_UNKNOWN_TAG = b'{ "type":"WARN", "src":"rfid", "desc":"Unknown rfid tag is scanned", "data":"", "time":1605991375, "cmd":"event", "hostname":"your esp-rfid hostname" }'
ESP_DOOR_OPEN = b'{ "type":"INFO", "src":"door", "desc":"Door Open", "data":"", "time":1605991375, "cmd":"event", "hostname":"your esp-rfid hostname" }'
ESP_DOOR_CLOSED = b'{ "type":"INFO", "src":"door", "desc":"Door Closed", "data":"", "time":1605991375, "cmd":"event", "hostname":"your esp-rfid hostname" }'
ESP_TAMPERED = b'{ "type":"WARN", "src":"tamper", "desc":"Door was tampered!", "data":"", "time":1605991375, "cmd":"event", "hostname":"your esp-rfid hostname" }'
ESP_MAX_OPEN = b'{ "type":"WARN", "src":"tamper", "desc":"Door wasn\'t closed within max open time!", "data":"", "time":1605991375, "cmd":"event", "hostname":"your esp-rfid hostname" }'
ESP_MQTT_DISCONNECTED = b'{ "type":"WARN", "src":"mqtt", "desc":"Disconnected from MQTT server", "data":"reason of disconnection", "time":1605991375, "cmd":"event", "hostname":"your esp-rfid hostname" }'
# Verbatim: the Home Assistant mode TOPIC/tag message.
ESP_HA_TAG = (
    b'{ "uid":"token UID", "username":"username", "access":"the access state", "time":1605991375 }'
)
ESP_HOST = "your esp-rfid hostname"

# ----- Zigbee2MQTT (verbatim) -----

# MCCGQ11LM, Koenkk/zigbee2mqtt#13342.
Z2M_AQARA = b'{ "battery": 100, "contact": false, "device_temperature": 28, "linkquality": 160, "power_outage_count": 8, "temperature": 26, "voltage": 3015 }'
# SNZB-04, Koenkk/zigbee2mqtt#4420, topic zigbee2mqtt/Sonoff W1.
Z2M_SONOFF = b'{"battery_low":false,"contact":false,"linkquality":21,"tamper":false}'
# SNZB-04P, home-assistant/core#127926, topic zigbee2mqtt/Bedroom Window.
Z2M_SONOFF_P = b'{"battery":100,"battery_low":false,"contact":true,"last_seen":"2024-10-08T12:54:51+02:00","linkquality":43,"tamper":false,"update":{"installed_version":8704,"latest_version":8704,"state":"idle"},"update_available":null,"voltage":3100}'
# Availability / bridge state, Koenkk/zigbee2mqtt#21773.
Z2M_ONLINE = b'{"state":"online"}'
Z2M_OFFLINE = b'{"state":"offline"}'

# ----- Axis -----

# Verbatim: the field note's IO port event (AXIS Q3538-SLVE).
AXIS_PORT = b'{"topic":"onvif:Device/axis:IO/Port","timestamp":1785325150144,"message":{"source":{"port":"1"},"key":{},"data":{"state":"0"}}}'
AXIS_PORT_TOPIC = "axis/B8A44F000001/event/tns:onvif/Device/tns:axis/IO/Port/$source/port/1"
# Verbatim: Kane610/axis tests/test_mqtt.py.
AXIS_PIR = b'{"timestamp": 1590045190230, "topic": "onvif:Device/axis:Sensor/PIR", "message": {"source": {"sensor": "0"}, "key": {}, "data": {"state": "0"}}}'
AXIS_DOOR_TOKEN = "Axis-00408c184bdb:1352121495.979065000"


def axis_event(
    topic: str, source: dict[str, str], data: dict[str, str], ts: int = 1785325150144
) -> bytes:
    """An Axis MQTT event bridge message (the derived door-event shape of the research)."""
    return json.dumps(
        {"topic": topic, "timestamp": ts, "message": {"source": source, "key": {}, "data": data}}
    ).encode()


# ----- helpers -----


def make_codec(codec: str, **options: Any) -> Codec[Any]:
    """A codec instance configured like a controller entry of the config."""
    config = TypeAdapter(ControllerConfig).validate_python(
        {"id": options.pop("id", codec), "codec": codec, "topics": ["#"], **options}
    )
    return CODECS[codec](config)


def inbound(topic: str, payload: Any, *, retained: bool = False) -> InboundMessage:
    """One MQTT message as ingest hands it to a codec (non-text payloads are sent as JSON)."""
    if not isinstance(payload, bytes | str):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return InboundMessage(topic=topic, payload=payload, retained=retained, received_at=RECEIVED)


def decode_one(codec: Codec[Any], topic: str, payload: Any, *, retained: bool = False) -> Event:
    """Decode a message that must give exactly one event."""
    events = codec.decode(inbound(topic, payload, retained=retained))
    assert len(events) == 1, events
    return events[0]


def run_cli(
    monkeypatch: Any, capsysbinary: Any, args: list[str], payload: bytes
) -> tuple[int, bytes, bytes]:
    """Run ``doorwatch <args>`` in this process with ``payload`` on stdin."""
    import io
    import sys

    from doorwatch.cli import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
    code = main(args)
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err


def run_cli_process(args: list[str], payload: bytes) -> tuple[int, str, str]:
    """Run ``doorwatch <args>`` as its own process (what an operator sees)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "doorwatch", *args],
        input=payload,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def write_site(tmp_path: Any, controllers: str) -> Any:
    """A minimal site config (doors front, back, gym) with the given controllers block."""
    import textwrap

    path = tmp_path / "site.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            site: {name: Codec High, timezone: America/Chicago}
            storage: {path: %s}
            doors:
              - {id: front, name: Front}
              - {id: back, name: Back}
              - {id: gym, name: Gym}
            """
            % (tmp_path / "site.db")
        )
        + textwrap.dedent(controllers)
    )
    return path


@contextlib.contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog events at every level, whatever an earlier test configured."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
