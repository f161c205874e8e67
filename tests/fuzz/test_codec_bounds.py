"""Every MQTT codec on the biggest payloads ingest lets through: bounded time and memory.

tests/codecs/test_properties.py fuzzes each codec's *shape* handling with small payloads; this
file sends what those cannot: payloads at ``mqtt.max_payload_bytes`` (256 KiB by default)
built to be expensive (one huge string in every known field, wide arrays, many keys, deep
nesting, long digit runs that look like card numbers). Each decode must finish within a time
budget and a tracemalloc memory budget, and end in events or a DecodeError.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest
from pydantic import TypeAdapter

from doorwatch.adapters.mqtt.codecs import CODECS, Codec, ControllerConfig, InboundMessage
from doorwatch.config.models import MqttConfig
from doorwatch.errors import DecodeError
from doorwatch.events import Event, utcnow

CAP = MqttConfig.model_fields["max_payload_bytes"].default
CARD = "4111111111111111"

# (codec, options, topic, a payload shape whose string fields get blown up)
SHAPES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    (
        "generic",
        {},
        "site/a/events",
        {"kind": "access.granted", "door": "gym", "credential": CARD, "holder": "Ann"},
    ),
    (
        "uhppoted",
        {},
        "uhppoted/gateway/events/live",
        {
            "message": {
                "event": {
                    "event": {
                        "device-id": 405419896,
                        "event-id": 69,
                        "event-type": 1,
                        "access-granted": True,
                        "door-id": 1,
                        "direction": 1,
                        "card-number": 8165537,
                        "timestamp": "2026-01-05 10:00:00",
                        "event-reason": 1,
                        "event-type-text": "swipe",
                        "direction-text": "in",
                        "event-reason-text": "swipe",
                    }
                }
            }
        },
    ),
    (
        "esp-rfid",
        {},
        "esp/send",
        {
            "type": "access",
            "time": 1605991375,
            "isKnown": "true",
            "access": "Always",
            "username": "Ann",
            "uid": CARD,
            "hostname": "esp",
            "doorName": "front",
        },
    ),
    ("zigbee2mqtt", {}, "zigbee2mqtt/front door", {"contact": False, "battery": 90}),
    (
        "axis",
        {},
        "axis/B8A44F000000/event/tns1:Device/tnsaxis:IO/Port",
        {
            "topic": "onvif:Device/axis:IO/Port",
            "timestamp": 1767189000123,
            "serial": "B8A44F000000",
            "message": {"source": {"port": "1"}, "key": {}, "data": {"state": "1"}},
        },
    ),
    ("shelly", {}, "shellies/front/sensor/state", {"state": "open"}),
    (
        "mapping",
        {
            "rules": [
                {
                    "match": "panel/{device}/access",
                    "kinds": {"result": {"ok": "access.granted"}},
                    "door": "reader.door",
                    "credential": "badge.number",
                    "holder": "badge.holder",
                }
            ]
        },
        "panel/p1/access",
        {"result": "ok", "reader": {"door": "d"}, "badge": {"number": CARD, "holder": "Ann"}},
    ),
]


def make(name: str, options: dict[str, Any]) -> Codec[Any]:
    config = TypeAdapter(ControllerConfig).validate_python(
        {"id": name, "codec": name, "topics": ["#"], **options}
    )
    return CODECS[name](config)


def blow_up(node: Any, filler: str) -> Any:
    """Every string value replaced by ``filler`` (keys and other types kept)."""
    if isinstance(node, dict):
        return {k: blow_up(v, filler) for k, v in node.items()}
    if isinstance(node, list):
        return [blow_up(v, filler) for v in node]
    return filler if isinstance(node, str) else node


def fill_to_cap(shape: dict[str, Any], kind: str) -> bytes:
    """One expensive variant of ``shape``, no larger than the ingest cap."""
    if kind == "huge-strings":
        count = max(1, json.dumps(shape).count('"') // 4)
        body = json.dumps(blow_up(shape, "A" * ((CAP - 2000) // count)))
    elif kind == "card-digits":
        count = max(1, json.dumps(shape).count('"') // 4)
        body = json.dumps(blow_up(shape, "4" * ((CAP - 2000) // count)))
    elif kind == "wide-array":
        body = json.dumps({**shape, "extra": [0] * ((CAP - 2000) // 2)}, separators=(",", ":"))
    elif kind == "many-keys":
        keys = {f"k{i}": 1 for i in range((CAP - 2000) // 12)}
        body = json.dumps({**shape, **keys}, separators=(",", ":"))
    elif kind == "deep":
        depth = (CAP - 2000) // 2
        return b"[" * depth + b"]" * depth
    else:
        raise AssertionError(kind)
    data = body.encode()
    assert len(data) <= CAP, (kind, len(data))
    return data


KINDS = ["huge-strings", "card-digits", "wide-array", "many-keys", "deep"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "options", "topic", "shape"), SHAPES, ids=[s[0] for s in SHAPES])
def test_payload_at_the_ingest_cap_is_bounded(name, options, topic, shape, kind):
    """A 256 KiB payload designed to be expensive decodes (or is refused) in under 2 s and
    30 MiB of allocations (about 120 times its size), and no card number leaks whole."""
    codec = make(name, options)
    payload = fill_to_cap(shape, kind)
    message = InboundMessage(topic=topic, payload=payload, retained=False, received_at=utcnow())
    tracemalloc.start()
    started = time.perf_counter()
    events: list[Event] = []
    refusal = ""
    try:
        events = codec.decode(message)
    except DecodeError as exc:
        refusal = exc.reason
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert "\n" not in refusal
    assert len(refusal) < 1000
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert peak < 30 * 2**20, f"{peak / 2**20:.0f} MiB"
    for event in events:
        assert event.credential is None or event.credential.startswith("*")
        for text in (event.door, event.holder, event.reason, event.device, event.dedupe_key):
            assert text is None or len(text) <= 512
        assert CARD not in repr(event)
