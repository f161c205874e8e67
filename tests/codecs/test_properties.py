"""Property tests: whatever arrives on the wire, a codec returns events or raises DecodeError.

Arbitrary bytes, arbitrary JSON, deep nesting, and the codecs' own payload shapes with one
known field replaced by an arbitrary JSON value. Every event that comes out has its text capped
and its credential masked.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import (
    AXIS_PORT,
    AXIS_PORT_TOPIC,
    ESP_BOOT,
    ESP_DOOR_OPEN,
    UHPPOTED_NO_RESPONSE,
    Z2M_SONOFF_P,
    make_codec,
    uhppoted_event,
)

from doorwatch.adapters.mqtt.codecs import Codec, InboundMessage
from doorwatch.errors import DecodeError
from doorwatch.events import Event, utcnow

ALLOWED_KINDS = {"malformed", "too_deep", "wrong_type", "signature", "unsupported"}
# Generous for speed: each example is one decode of a small payload.
FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def deep(depth: int, kind: str) -> bytes:
    """JSON nested ``depth`` levels, built as bytes (building it in Python would recurse)."""
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


deep_payloads = st.builds(
    deep, st.integers(min_value=1, max_value=3000), st.sampled_from(["list", "dict"])
)


def check(codec: Codec[Any], topic: str, payload: bytes, retained: bool = False) -> None:
    """Decode once; only events or a DecodeError of a known kind may come out."""
    message = InboundMessage(topic=topic, payload=payload, retained=retained, received_at=utcnow())
    error: DecodeError | None = None
    events: list[Event] = []
    try:
        events = codec.decode(message)
    except DecodeError as exc:
        error = exc
    if error is not None:
        assert error.kind in ALLOWED_KINDS, error.kind
        assert "\n" not in error.reason
        return
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, Event)
        for text in (
            event.device,
            event.door,
            event.door_ref,
            event.holder,
            event.reason,
            event.dedupe_key,
        ):
            assert text is None or len(text) <= 512, text
        assert event.credential is None or event.credential.startswith("*")
        assert event.replayed or not retained


def with_value(base: dict[str, Any], path: tuple[str, ...], value: Any) -> bytes:
    """``base`` with the field at ``path`` replaced (or removed, for the marker ``...``)."""
    data = copy.deepcopy(base)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is Ellipsis:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return json.dumps(data).encode()


def mapping_codec() -> Codec[Any]:
    return make_codec(
        "mapping",
        rules=[
            {
                "match": "panel/{device}/door/{door}",
                "device": "$topic.device",
                "door": "$topic.door",
                "kinds": {"$payload": {"OPEN": "door.opened", "CLOSED": "door.closed"}},
            },
            {
                "match": "panel/{device}/access",
                "kinds": {
                    "result": {"ok": "access.granted"},
                    "alarm.kind": {"duress": "access.duress"},
                },
                "door": "reader.door",
                "credential": "badge.number",
                "holder": "badge.holder",
                "direction": "dir",
                "time": "ts",
                "time_format": "epoch_ms",
                "event_id": "seq",
            },
            {"match": "panel/#", "kind": "unknown", "time": "when", "reason": "items[-1].text"},
        ],
    )


# (codec factory, topics it listens on, a known payload shape, the paths of its known fields)
UHPPOTED_BASE = {"message": {"event": {"event": uhppoted_event()}}}
ESP_ACCESS = {
    "type": "access",
    "time": 1605991375,
    "isKnown": "true",
    "access": ["Always", "Disabled"],
    "username": "Ann",
    "uid": "8165537",
    "hostname": "esp",
    "doorName": ["a", "b"],
}
MAPPING_ACCESS = {
    "seq": 1,
    "ts": 1767189000123,
    "result": "ok",
    "dir": "in",
    "reader": {"door": "d"},
    "badge": {"number": "1234", "holder": "Ann"},
}
CASES: dict[str, tuple[Any, list[str], list[tuple[str, dict[str, Any], list[tuple[str, ...]]]]]] = {
    "generic": (
        lambda: make_codec("generic"),
        ["site/a/events"],
        [
            (
                "site/a/events",
                {"kind": "door.opened", "door": "gym", "credential": "8165537"},
                [("kind",), ("door",), ("credential",), ("device_time",)],
            )
        ],
    ),
    "uhppoted": (
        lambda: make_codec("uhppoted", device_timezone="America/Chicago"),
        [
            "uhppoted/gateway/events/live",
            "uhppoted/gateway/events",
            "uhppoted/gateway/system",
            "uhppoted/gateway/replies",
        ],
        [
            (
                "uhppoted/gateway/events/live",
                UHPPOTED_BASE,
                [("message",), ("message", "event"), ("message", "event", "event")]
                + [("message", "event", "event", key) for key in uhppoted_event()],
            ),
            (
                "uhppoted/gateway/system",
                UHPPOTED_NO_RESPONSE,
                [("alert",), ("alert", "message"), ("alert", "subsystem")],
            ),
            (
                "uhppoted/gateway/system",
                {"alive": {"subsystem": "watchdog", "message": "OK"}},
                [("alive",), ("alive", "message"), ("alive", "subsystem")],
            ),
        ],
    ),
    "esp-rfid": (
        lambda: make_codec("esp-rfid"),
        ["esp/send", "esp/tag", "esp/io/door", "esp/io/lock2", "esp/avty", "esp"],
        [
            ("esp/send", ESP_ACCESS, [(key,) for key in ESP_ACCESS]),
            ("esp/send", json.loads(ESP_BOOT), [(key,) for key in json.loads(ESP_BOOT)]),
            ("esp/send", json.loads(ESP_DOOR_OPEN), [(key,) for key in json.loads(ESP_DOOR_OPEN)]),
            (
                "esp/tag",
                {"uid": "1", "username": "u", "access": "Always", "time": 1605991375},
                [("uid",), ("access",), ("time",)],
            ),
        ],
    ),
    "zigbee2mqtt": (
        lambda: make_codec("zigbee2mqtt"),
        [
            "zigbee2mqtt/dev",
            "zigbee2mqtt/dev/availability",
            "zigbee2mqtt/bridge/state",
            "zigbee2mqtt/a/b/c",
            "zigbee2mqtt/x/set",
        ],
        [
            (
                "zigbee2mqtt/Bedroom Window",
                json.loads(Z2M_SONOFF_P),
                [(key,) for key in json.loads(Z2M_SONOFF_P)],
            ),
            ("zigbee2mqtt/dev/availability", {"state": "online"}, [("state",)]),
        ],
    ),
    "axis": (
        lambda: make_codec("axis"),
        [AXIS_PORT_TOPIC, "axis/S/event/connection", "axis/S/event/x", "x"],
        [
            (
                AXIS_PORT_TOPIC,
                json.loads(AXIS_PORT),
                [
                    ("topic",),
                    ("timestamp",),
                    ("message",),
                    ("message", "source"),
                    ("message", "data"),
                    ("message", "key"),
                    ("message", "data", "state"),
                    ("message", "source", "port"),
                    ("serial",),
                ],
            ),
            (
                "axis/S/event/x",
                {
                    "topic": "onvif:AccessControl/AccessGranted/Credential",
                    "timestamp": 1,
                    "message": {
                        "source": {"AccessPointToken": "a"},
                        "key": {},
                        "data": {"CredentialToken": "c", "CredentialHolderName": "h"},
                    },
                },
                [
                    ("message", "data", "CredentialToken"),
                    ("message", "data", "CredentialHolderName"),
                    ("message", "source", "AccessPointToken"),
                ],
            ),
        ],
    ),
    "shelly": (
        lambda: make_codec("shelly", online_false_is_offline=True),
        [
            "shellies/dw/sensor/state",
            "shellies/dw/online",
            "shellies/dw/sensor/battery",
            "shellies/dw/sensor/vibration",
            "dw/online",
        ],
        [],
    ),
    "mapping": (
        mapping_codec,
        ["panel/p1/door/front", "panel/p1/access", "panel/p1/other", "elsewhere"],
        [
            (
                "panel/p1/access",
                MAPPING_ACCESS,
                [(key,) for key in MAPPING_ACCESS]
                + [("reader", "door"), ("badge", "number"), ("badge", "holder")],
            ),
            (
                "panel/p1/other",
                {"when": "2026-01-01T00:00:00", "items": [{"text": "x"}]},
                [("when",), ("items",)],
            ),
        ],
    ),
}
NAMES = sorted(CASES)


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data(), payload=st.binary(max_size=300), retained=st.booleans())
def test_arbitrary_bytes(name, data, payload, retained):
    """Arbitrary bytes on any of the codec's topics never raise anything but DecodeError."""
    factory, topics, _ = CASES[name]
    check(factory(), data.draw(st.sampled_from(topics)), payload, retained)


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data(), value=json_values)
def test_arbitrary_json(name, data, value):
    """Arbitrary JSON documents never raise anything but DecodeError."""
    factory, topics, _ = CASES[name]
    check(factory(), data.draw(st.sampled_from(topics)), json.dumps(value).encode())


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data(), payload=deep_payloads)
def test_deep_nesting(name, data, payload):
    """Documents nested up to 3,000 levels are decoded or refused, never a RecursionError."""
    factory, topics, _ = CASES[name]
    check(factory(), data.draw(st.sampled_from(topics)), payload)


# Every (codec, payload shape, known field), so each field gets its own share of examples.
FIELDS = [
    pytest.param(name, index, path, id=f"{name}-{index}-{'.'.join(path)}")
    for name in NAMES
    for index, (_, _, paths) in enumerate(CASES[name][2])
    for path in paths
]
# Values that look right but are not: numbers as text, empty and odd strings, near-limits.
tricky = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e3",
        "NaN",
        "true",
        "null",
        "\u0000",
        "ON",
        "9" * 30,
        2**64,
        -(2**63),
        0.5,
    ]
)


@pytest.mark.parametrize(("name", "index", "path"), FIELDS)
@settings(max_examples=20, deadline=None)
@given(value=json_values | tricky | st.just(Ellipsis))
def test_known_fields_of_the_wrong_type(name, index, path, value):
    """A real payload shape with one known field replaced by any JSON value (or removed)."""
    factory, _, shapes = CASES[name]
    topic, base, _ = shapes[index]
    check(factory(), topic, with_value(base, path, value))


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n][2]])
@FAST
@given(data=st.data(), depth=st.integers(min_value=500, max_value=1500))
def test_deep_nesting_inside_known_fields(name, data, depth):
    """A known field holding a deeply nested value is decoded or refused cleanly."""
    factory, _, shapes = CASES[name]
    topic, base, paths = data.draw(st.sampled_from(shapes))
    path = data.draw(st.sampled_from(paths))
    marker = "__deep__"
    payload = with_value(base, path, marker).replace(
        json.dumps(marker).encode(), deep(depth, "list")
    )
    check(factory(), topic, payload)


@pytest.fixture(scope="module")
def hmac_key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hmac") / "key"
    path.write_text("property-key")
    return path


@FAST
@given(
    value=json_values | st.just(Ellipsis),
    key=st.sampled_from(list(uhppoted_event())),
    sign=st.booleans(),
)
def test_uhppoted_with_hmac_never_raises_other_errors(hmac_key_file, value, key, sign):
    """With HMAC checking on, signed or unsigned payloads with any field value are decoded or
    refused as DecodeError (signature when unsigned)."""
    codec = make_codec("uhppoted", hmac_key_file=str(hmac_key_file))
    body = json.loads(with_value(UHPPOTED_BASE, ("message", "event", "event", key), value))[
        "message"
    ]
    raw = json.dumps(body).encode()
    mac = hmac.new(b"property-key", raw, hashlib.sha256).hexdigest() if sign else "00"
    check(
        codec,
        "uhppoted/gateway/events/live",
        b'{"message":' + raw + b',"hmac":"' + mac.encode() + b'"}',
    )


@pytest.mark.parametrize("depth", [990, 1000, 1020, 1030, 5000])
def test_uhppoted_hmac_span_on_nesting_near_the_parser_limits(hmac_key_file, depth):
    """The HMAC check re-reads the message with Python's JSON scanner, whose recursion limit
    differs from orjson's: nesting around both limits is still only a DecodeError."""
    codec = make_codec("uhppoted", hmac_key_file=str(hmac_key_file))
    payload = b'{"message":{"event":{"event":' + deep(depth, "list") + b'}},"hmac":"00"}'
    with pytest.raises(DecodeError) as caught:
        codec.decode(
            InboundMessage(topic="t", payload=payload, retained=False, received_at=utcnow())
        )
    assert caught.value.kind in ALLOWED_KINDS
