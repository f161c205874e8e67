"""The zigbee2mqtt codec on published sensor payloads: inverted contact, repeats, availability."""

from __future__ import annotations

import json

import pytest
from samples import (
    RECEIVED,
    Z2M_AQARA,
    Z2M_OFFLINE,
    Z2M_ONLINE,
    Z2M_SONOFF,
    Z2M_SONOFF_P,
    decode_one,
    inbound,
    make_codec,
    run_cli,
    run_cli_process,
    write_site,
)

from doorwatch.adapters.mqtt.simulator import Step, Zigbee2MqttFormat
from doorwatch.errors import DecodeError
from doorwatch.events import EventKind

AQARA = "zigbee2mqtt/front-door-contact"


def with_contact(sample: bytes, *, contact: bool) -> dict:
    return json.loads(sample) | {"contact": contact}


def test_first_contact_value_is_replayed_state_and_contact_false_means_open():
    """The Aqara sample (contact false) is an OPEN door; being the first value seen since
    start (Z2M republishes its cache on start-up) it is replayed state."""
    codec = make_codec("zigbee2mqtt", id="z2m")
    event = decode_one(codec, AQARA, Z2M_AQARA)
    assert event.kind is EventKind.DOOR_OPENED
    assert event.source == "z2m"
    assert event.device == "front-door-contact"
    assert event.door == event.door_ref == "front-door-contact"
    assert event.reason == "contact false"
    assert event.replayed is True
    assert event.device_time is None  # Sensors send no time.
    assert event.credential is None
    assert event.received_at == RECEIVED
    assert event.dedupe_key.startswith("z2m:front-door-contact:open:")


def test_contact_true_is_closed_and_only_changes_are_door_events():
    """contact true is CLOSED; a battery or link-quality repeat of the same contact value is a
    heartbeat, not a door event; every real change is a new door event with a new key."""
    codec = make_codec("zigbee2mqtt", id="z2m")
    decode_one(codec, AQARA, Z2M_AQARA)
    repeat = decode_one(codec, AQARA, json.loads(Z2M_AQARA) | {"linkquality": 90})
    assert repeat.kind is EventKind.DEVICE_HEARTBEAT
    assert repeat.reason == "battery 100%"
    assert repeat.door is None
    closed = decode_one(codec, AQARA, with_contact(Z2M_AQARA, contact=True))
    assert (closed.kind, closed.replayed, closed.reason) == (
        EventKind.DOOR_CLOSED,
        False,
        "contact true",
    )
    opened = decode_one(codec, AQARA, with_contact(Z2M_AQARA, contact=False))
    assert (opened.kind, opened.replayed) == (EventKind.DOOR_OPENED, False)
    again = decode_one(codec, AQARA, with_contact(Z2M_AQARA, contact=True))
    reopened = decode_one(codec, AQARA, with_contact(Z2M_AQARA, contact=False))
    assert reopened.kind is EventKind.DOOR_OPENED
    keys = [closed.dedupe_key, opened.dedupe_key, again.dedupe_key, reopened.dedupe_key]
    assert len(set(keys)) == 4  # A real second open counts.


def test_redelivered_message_does_not_count_twice():
    """The broker redelivering an open (QoS 1, no DUP for the subscriber) gives no second
    door.opened: the remembered state already says open."""
    codec = make_codec("zigbee2mqtt")
    decode_one(codec, AQARA, with_contact(Z2M_AQARA, contact=True))
    opened = codec.decode(inbound(AQARA, with_contact(Z2M_AQARA, contact=False)))
    redelivered = codec.decode(inbound(AQARA, with_contact(Z2M_AQARA, contact=False)))
    assert [e.kind for e in opened] == [EventKind.DOOR_OPENED]
    assert [e.kind for e in redelivered] == [EventKind.DEVICE_HEARTBEAT]


def test_last_seen_makes_keys_stable_across_restarts():
    """With advanced.last_seen the version is the bridge's last_seen: the same message decoded
    by a restarted daemon has the same key, so the journal keeps it once."""
    topic = "zigbee2mqtt/Bedroom Window"
    before = decode_one(make_codec("zigbee2mqtt", id="z2m"), topic, Z2M_SONOFF_P)
    after = decode_one(make_codec("zigbee2mqtt", id="z2m"), topic, Z2M_SONOFF_P)
    assert before.kind is EventKind.DOOR_CLOSED
    assert (
        before.dedupe_key
        == after.dedupe_key
        == "z2m:Bedroom Window:closed:2024-10-08T12:54:51+02:00"
    )


def test_sonoff_tamper_is_an_input_not_a_forced_door():
    """SNZB-04's tamper (its casing opened) is input.active/inactive with reason tamper on the
    sensor's door, never door.forced; a first "no tamper" is the normal state, not news."""
    codec = make_codec("zigbee2mqtt")
    topic = "zigbee2mqtt/Sonoff W1"
    events = codec.decode(inbound(topic, Z2M_SONOFF))
    assert [e.kind for e in events] == [EventKind.DOOR_OPENED]
    tampered = decode_one(codec, topic, json.loads(Z2M_SONOFF) | {"tamper": True})
    assert (tampered.kind, tampered.reason, tampered.door_ref, tampered.replayed) == (
        EventKind.INPUT_ACTIVE,
        "tamper",
        "Sonoff W1",
        False,
    )
    cleared = decode_one(codec, topic, Z2M_SONOFF)
    assert (cleared.kind, cleared.reason) == (EventKind.INPUT_INACTIVE, "tamper")


def test_battery_low_is_reported_on_the_heartbeat():
    """battery_low true shows in the heartbeat's reason while it lasts."""
    codec = make_codec("zigbee2mqtt")
    topic = "zigbee2mqtt/Sonoff W1"
    decode_one(codec, topic, Z2M_SONOFF)
    low = decode_one(codec, topic, json.loads(Z2M_SONOFF) | {"battery_low": True, "battery": 7})
    assert low.kind is EventKind.DEVICE_HEARTBEAT
    assert low.reason == "battery 7%, battery low"


def test_friendly_names_with_slashes_and_a_custom_base_topic():
    """The device name is the topic minus base_topic, slashes included, for state and
    availability alike."""
    codec = make_codec("zigbee2mqtt", base_topic="site/z2m")
    event = decode_one(codec, "site/z2m/floor1/gym/east door", Z2M_AQARA)
    assert event.device == event.door_ref == "floor1/gym/east door"
    available = decode_one(codec, "site/z2m/floor1/gym/east door/availability", Z2M_ONLINE)
    assert available.device == "floor1/gym/east door"
    with pytest.raises(DecodeError) as caught:
        codec.decode(inbound("zigbee2mqtt/front", Z2M_AQARA))
    assert caught.value.kind == "malformed"
    assert "base_topic" in caught.value.reason


def test_availability_json_and_legacy_plain_payloads():
    """{"state":"online"} (2.x, retained) and plain online/offline (1.x legacy) are
    device.online/offline; a retained one is replayed; a repeat adds nothing."""
    codec = make_codec("zigbee2mqtt")
    topic = AQARA + "/availability"
    online = decode_one(codec, topic, Z2M_ONLINE, retained=True)
    assert (online.kind, online.replayed, online.device, online.door) == (
        EventKind.DEVICE_ONLINE,
        True,
        "front-door-contact",
        None,
    )
    offline = decode_one(codec, topic, b"offline")
    assert (offline.kind, offline.replayed) == (EventKind.DEVICE_OFFLINE, False)
    assert codec.decode(inbound(topic, Z2M_OFFLINE)) == []
    assert decode_one(codec, topic, b"online").kind is EventKind.DEVICE_ONLINE


def test_bridge_state_and_other_bridge_topics():
    """bridge/state (JSON or legacy plain) is the bridge's own availability; bridge/info,
    bridge/devices and commands to devices are not events."""
    codec = make_codec("zigbee2mqtt")
    bridge = decode_one(codec, "zigbee2mqtt/bridge/state", Z2M_ONLINE)
    assert (bridge.kind, bridge.device, bridge.door) == (EventKind.DEVICE_ONLINE, "bridge", None)
    assert (
        decode_one(codec, "zigbee2mqtt/bridge/state", b"offline").kind is EventKind.DEVICE_OFFLINE
    )
    assert codec.decode(inbound("zigbee2mqtt/bridge/devices", b"[]")) == []
    assert codec.decode(inbound("zigbee2mqtt/bridge/info", {"version": "2.1"})) == []
    assert codec.decode(inbound(AQARA + "/set", {"state": "ON"})) == []
    assert codec.decode(inbound(AQARA + "/set/state", b"ON")) == []


def test_devices_without_contact_give_no_events():
    """A light or plug on the same base topic is not a door sensor: no events at all."""
    codec = make_codec("zigbee2mqtt")
    assert codec.decode(inbound("zigbee2mqtt/hall light", {"state": "ON", "brightness": 80})) == []


@pytest.mark.parametrize(
    ("topic", "payload", "kind"),
    [
        (AQARA, {"contact": "false"}, "wrong_type"),
        (AQARA, {"contact": False, "tamper": 1}, "wrong_type"),
        (AQARA, {"contact": False, "battery": "100"}, "wrong_type"),
        (AQARA, {"contact": False, "last_seen": {"t": 1}}, "wrong_type"),
        (AQARA, [1, 2], "wrong_type"),
        (AQARA, b"open", "malformed"),
        (AQARA + "/availability", b"maybe", "malformed"),
        (AQARA + "/availability", {"state": 1}, "wrong_type"),
        ("zigbee2mqtt/", {"contact": True}, "malformed"),
    ],
)
def test_wrong_shapes_are_decode_errors(topic, payload, kind):
    """Fields of the wrong type are wrong_type; unreadable payloads malformed."""
    with pytest.raises(DecodeError) as caught:
        make_codec("zigbee2mqtt").decode(inbound(topic, payload))
    assert caught.value.kind == kind


def test_simulator_traffic_decodes():
    """The demo's zigbee2mqtt simulator: close, open, a heartbeat repeat, offline, online."""
    renderer = Zigbee2MqttFormat()
    codec = make_codec("zigbee2mqtt")
    seen = []
    for action in ("close", "open", "close", "heartbeat", "offline", "online"):
        (publication,) = renderer.render(
            Step(at=0, action=action, device="gym-east-contact"), RECEIVED
        )
        seen.append(decode_one(codec, publication.topic, publication.payload).kind)
    assert seen == [
        EventKind.DOOR_CLOSED,
        EventKind.DOOR_OPENED,
        EventKind.DOOR_CLOSED,
        EventKind.DEVICE_HEARTBEAT,
        EventKind.DEVICE_OFFLINE,
        EventKind.DEVICE_ONLINE,
    ]


def test_decode_command_maps_the_sensor_to_its_door(tmp_path, monkeypatch, capsysbinary):
    """`doorwatch decode --format zigbee2mqtt -c CONFIG` prints the site door."""
    config = write_site(
        tmp_path,
        """
        controllers:
          - {id: zigbee, codec: zigbee2mqtt, topics: ["zigbee2mqtt/#"], doors: {"Sonoff W1": back}}
        """,
    )
    code, out, err = run_cli(
        monkeypatch,
        capsysbinary,
        [
            "decode",
            "--format",
            "zigbee2mqtt",
            "--topic",
            "zigbee2mqtt/Sonoff W1",
            "-c",
            str(config),
        ],
        Z2M_SONOFF,
    )
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["kind"], printed["door"], printed["replayed"]) == ("door.opened", "back", True)


def test_decode_command_bad_input_is_one_line_without_traceback():
    """A contact that is a string exits 2 with one line."""
    code, out, err = run_cli_process(
        ["decode", "--format", "zigbee2mqtt", "--topic", AQARA], b'{"contact": "false"}'
    )
    assert (code, out) == (2, "")
    assert err.strip() == "decode: wrong_type: field contact must be a boolean, got string"
