"""The esp-rfid codec on the README's samples and the firmware's quirks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from samples import (
    ESP_ACCESS_KNOWN,
    ESP_ACCESS_UNKNOWN,
    ESP_BOOT,
    ESP_DOOR_CLOSED,
    ESP_DOOR_OPEN,
    ESP_HA_TAG,
    ESP_HEARTBEAT,
    ESP_HOST,
    ESP_MAX_OPEN,
    ESP_MQTT_DISCONNECTED,
    ESP_TAMPERED,
    ESP_UNKNOWN_TAG,
    RECEIVED,
    captured_logs,
    decode_one,
    inbound,
    make_codec,
    run_cli,
    run_cli_process,
    write_site,
)

from doorwatch.adapters.mqtt.simulator import EspRfidFormat, Step
from doorwatch.errors import DecodeError
from doorwatch.events import EventKind

SEND = "esp-rfid-a1b2c3/send"
SAMPLE_TIME = datetime(2020, 11, 21, 20, 42, 55, tzinfo=UTC)  # 1605991375


def access(**fields) -> dict:
    base = {
        "type": "access",
        "time": 1605991375,
        "isKnown": "true",
        "access": "Always",
        "username": "Ann Lee",
        "uid": "8165537",
        "hostname": "esp-front",
        "doorName": "Front door",
    }
    return {**base, **fields}


def test_boot_sample_is_device_online_with_the_device_clock():
    """boot (sent on every MQTT connect) is device.online of the hostname, with time as
    device_time and a (hostname, type, time) dedupe key."""
    event = decode_one(make_codec("esp-rfid", id="esp"), SEND, ESP_BOOT)
    assert event.kind is EventKind.DEVICE_ONLINE
    assert event.source == "esp"
    assert event.device == ESP_HOST
    assert event.door is None
    assert event.reason == "boot, uptime 0 s"
    assert event.device_time == datetime(2020, 11, 21, 19, 33, 32, tzinfo=UTC)
    assert event.received_at == RECEIVED
    assert event.replayed is False
    assert event.dedupe_key == f"esprfid:{ESP_HOST}:boot:1605987212"


def test_uptime_is_a_number_or_a_string():
    """The README's boot has uptime 0, the firmware sends "0"; heartbeats send a number."""
    codec = make_codec("esp-rfid")
    as_string = json.loads(ESP_BOOT) | {"uptime": "0"}
    assert decode_one(codec, SEND, as_string).reason == "boot, uptime 0 s"
    heartbeat = decode_one(codec, SEND, ESP_HEARTBEAT)
    assert heartbeat.kind is EventKind.DEVICE_HEARTBEAT
    assert heartbeat.reason == "heartbeat, uptime 999 s"
    assert heartbeat.device_time == SAMPLE_TIME
    assert heartbeat.dedupe_key == f"esprfid:{ESP_HOST}:heartbeat:1605991375"
    with pytest.raises(DecodeError) as caught:
        codec.decode(inbound(SEND, json.loads(ESP_HEARTBEAT) | {"uptime": [999]}))
    assert caught.value.kind == "wrong_type"


def test_old_firmware_hearthbeat_spelling_is_a_heartbeat():
    """Older firmware spelled the type "hearthbeat"."""
    event = decode_one(
        make_codec("esp-rfid"), "esp-rfid", {"type": "hearthbeat", "time": 1605991375}
    )
    assert event.kind is EventKind.DEVICE_HEARTBEAT
    assert event.device == "esp-rfid"


def test_known_tag_sample_with_an_unrecognised_access_value_is_unknown():
    """The README's known-tag sample carries a placeholder access value: not guessed as a grant
    or a denial, but unknown with the value as reason; uid masked, doorName as door."""
    event = decode_one(make_codec("esp-rfid"), SEND, ESP_ACCESS_KNOWN)
    assert event.kind is EventKind.UNKNOWN
    assert event.reason == "the access state"
    assert event.holder == "username"
    assert event.credential == "***** UID"
    assert event.door_ref == "your door name"
    assert event.device == ESP_HOST
    assert event.device_time == SAMPLE_TIME


def test_unknown_tag_sample_is_denied_without_a_holder():
    """isKnown "false" with access Denied is access.denied; "Unknown" is not a holder."""
    event = decode_one(make_codec("esp-rfid"), SEND, ESP_ACCESS_UNKNOWN)
    assert event.kind is EventKind.ACCESS_DENIED
    assert event.reason == "Denied"
    assert event.holder is None
    assert event.credential == "***** UID"
    assert event.door_ref == ESP_HOST  # No doorName: the hostname is the door reference.
    assert event.dedupe_key.startswith(f"esprfid:{ESP_HOST}:access:1605991375:")
    assert "token" not in event.dedupe_key


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Always", EventKind.ACCESS_GRANTED),
        ("Admin", EventKind.ACCESS_GRANTED),
        ("Disabled", EventKind.ACCESS_DENIED),
        ("Expired", EventKind.ACCESS_DENIED),
        ("Wrong pin code", EventKind.ACCESS_DENIED),
        ("Denied", EventKind.ACCESS_DENIED),
    ],
)
def test_access_values(value, kind):
    """Always and Admin grant; Disabled, Expired, Wrong pin code and Denied deny, with the
    value as reason; the card is masked and the holder kept."""
    event = decode_one(make_codec("esp-rfid"), SEND, access(access=value))
    assert event.kind is kind
    assert event.reason == value
    assert event.credential == "****5537"
    assert event.holder == "Ann Lee"
    assert event.door_ref == "Front door"
    assert event.device == "esp-front"


def test_exit_button_is_a_request_to_exit():
    """The exit button publishes access with username "Button" and uid " ": exit.request."""
    event = decode_one(make_codec("esp-rfid"), SEND, access(username="Button", uid=" "))
    assert event.kind is EventKind.EXIT_REQUEST
    assert event.credential is None
    assert event.holder is None
    assert event.door_ref == "Front door"


def test_pin_only_mode_masks_the_uid_entirely():
    """In PIN-only mode uid is the PIN: not one digit of it survives, in the event or the key."""
    event = decode_one(make_codec("esp-rfid", pin_only=True), SEND, access(uid="482913"))
    assert event.credential == "****"
    assert "2913" not in event.dedupe_key
    assert "482913" not in json.dumps(event.to_json())


def test_is_known_string_or_boolean_and_nothing_else():
    """isKnown is normally the string "true"/"false"; a JSON boolean is accepted; other
    types are wrong_type."""
    codec = make_codec("esp-rfid")
    assert decode_one(codec, SEND, access(isKnown=False, access="Denied")).holder is None
    for bad in (1, "maybe", ["true"]):
        with pytest.raises(DecodeError) as caught:
            codec.decode(inbound(SEND, access(isKnown=bad)))
        assert caught.value.kind == "wrong_type"


def test_access_and_door_name_arrays_one_event_per_granted_relay():
    """With several relays access and doorName are arrays: one grant per relay opened; a
    refusal on every relay is one denial at the first door; unnamed relays use host:n."""
    codec = make_codec("esp-rfid")
    both = codec.decode(
        inbound(SEND, access(access=["Always", "Always"], doorName=["Front", "Back"]))
    )
    assert [(e.kind, e.door_ref) for e in both] == [
        (EventKind.ACCESS_GRANTED, "Front"),
        (EventKind.ACCESS_GRANTED, "Back"),
    ]
    assert both[0].dedupe_key != both[1].dedupe_key
    second = codec.decode(inbound(SEND, access(access=["Disabled", "Always"], doorName="Front")))
    assert [(e.kind, e.door_ref) for e in second] == [(EventKind.ACCESS_GRANTED, "esp-front:2")]
    none = codec.decode(
        inbound(SEND, access(access=["Disabled", "Expired"], doorName=["Front", "Back"]))
    )
    assert [(e.kind, e.door_ref, e.reason) for e in none] == [
        (EventKind.ACCESS_DENIED, "Front", "Disabled")
    ]


@pytest.mark.parametrize(
    ("sample", "kind", "reason"),
    [
        (ESP_DOOR_OPEN, EventKind.DOOR_OPENED, "Door Open"),
        (ESP_DOOR_CLOSED, EventKind.DOOR_CLOSED, "Door Closed"),
        (ESP_TAMPERED, EventKind.DOOR_FORCED, "Door was tampered!"),
        (ESP_MAX_OPEN, EventKind.DOOR_HELD_OPEN, "Door wasn't closed within max open time!"),
    ],
)
def test_door_log_events(sample, kind, reason):
    """Door Open/Closed, "Door was tampered!" (opened while locked = forced) and the max open
    time warning (held open) are door events at the hostname."""
    event = decode_one(make_codec("esp-rfid"), SEND, sample)
    assert event.kind is kind
    assert event.reason == reason
    assert event.door_ref == ESP_HOST
    assert event.device == ESP_HOST
    assert event.device_time == SAMPLE_TIME
    assert event.dedupe_key.startswith(f"esprfid:{ESP_HOST}:")


def test_other_log_lines_give_no_event_and_are_logged_once():
    """ "Unknown rfid tag" is also an access message (the event); other log lines such as the
    MQTT disconnect notice are no event, logged once each."""
    codec = make_codec("esp-rfid")
    assert codec.decode(inbound(SEND, ESP_UNKNOWN_TAG)) == []
    with captured_logs() as logs:
        assert codec.decode(inbound(SEND, ESP_MQTT_DISCONNECTED)) == []
        assert codec.decode(inbound(SEND, ESP_MQTT_DISCONNECTED)) == []
    assert [entry["event"] for entry in logs] == ["esp-rfid log line ignored"]


def test_command_replies_are_not_events():
    """Replies to commands (user lists with UIDs) are neither events nor logged."""
    codec = make_codec("esp-rfid")
    reply = {"type": "getuserlist", "list": [{"uid": "8165537", "pincode": "1234"}]}
    with captured_logs() as logs:
        assert codec.decode(inbound(SEND, reply)) == []
    assert logs == []


def test_time_zero_means_an_unset_clock_and_does_not_merge_events():
    """Before NTP, time is 0 on every event: device_time is null and two door openings
    in a row keep distinct dedupe keys; with a set clock a redelivery keeps its key."""
    codec = make_codec("esp-rfid")
    unsynced = json.loads(ESP_DOOR_OPEN) | {"time": 0}
    first = decode_one(codec, SEND, unsynced)
    second = decode_one(codec, SEND, unsynced)
    assert first.device_time is None
    assert first.dedupe_key != second.dedupe_key
    assert (
        decode_one(codec, SEND, ESP_DOOR_OPEN).dedupe_key
        == decode_one(codec, SEND, ESP_DOOR_OPEN).dedupe_key
    )


def test_home_assistant_tag_topic():
    """HA mode's TOPIC/tag message (no type, no hostname) is an access event of the topic."""
    event = decode_one(make_codec("esp-rfid"), "esp-rfid-a1b2c3/tag", ESP_HA_TAG)
    assert event.kind is EventKind.UNKNOWN  # The README's placeholder access value.
    assert event.device == "esp-rfid-a1b2c3"
    assert event.door_ref == "esp-rfid-a1b2c3"
    assert event.holder == "username"
    granted = decode_one(
        make_codec("esp-rfid"), "esp-rfid-a1b2c3/tag", json.loads(ESP_HA_TAG) | {"access": "Admin"}
    )
    assert granted.kind is EventKind.ACCESS_GRANTED


def test_home_assistant_io_topics_are_plain_strings_and_only_changes_count():
    """io/door ON/OFF are plain strings: the first value is replayed state, later changes are
    door events, a repeat is nothing; tamper, lock and doorbell topics map likewise."""
    codec = make_codec("esp-rfid", id="esp")
    first = decode_one(codec, "esp-front/io/door", b"ON")
    assert (first.kind, first.replayed, first.door_ref, first.device) == (
        EventKind.DOOR_OPENED,
        True,
        "esp-front",
        "esp-front",
    )
    closed = decode_one(codec, "esp-front/io/door", b"OFF")
    assert (closed.kind, closed.replayed, closed.reason) == (
        EventKind.DOOR_CLOSED,
        False,
        "io/door OFF",
    )
    assert codec.decode(inbound("esp-front/io/door", b"OFF")) == []
    reopened = decode_one(codec, "esp-front/io/door", b"ON")
    assert reopened.kind is EventKind.DOOR_OPENED
    assert reopened.dedupe_key != first.dedupe_key
    decode_one(codec, "esp-front/io/tamper", b"OFF")
    assert decode_one(codec, "esp-front/io/tamper", b"ON").kind is EventKind.DOOR_FORCED
    decode_one(codec, "esp-front/io/lock1", b"UNLOCKED")
    locked = decode_one(codec, "esp-front/io/lock1", b"LOCKED")
    assert (locked.kind, locked.door_ref) == (EventKind.DOOR_LOCKED, "esp-front")
    second_relay = decode_one(codec, "esp-front/io/lock2", b"UNLOCKED")
    assert (second_relay.kind, second_relay.door_ref) == (EventKind.DOOR_UNLOCKED, "esp-front:2")
    decode_one(codec, "esp-front/io/doorbell", b"OFF")
    assert decode_one(codec, "esp-front/io/doorbell", b"ON").kind is EventKind.INPUT_ACTIVE
    with pytest.raises(DecodeError) as caught:
        codec.decode(inbound("esp-front/io/door", b"AJAR"))
    assert caught.value.kind == "malformed"


def test_availability_topic_online_offline():
    """avty online (retained at connect) is replayed device.online; the LWT offline is
    device.offline; a repeat adds nothing."""
    codec = make_codec("esp-rfid")
    online = decode_one(codec, "esp-front/avty", b"online", retained=True)
    assert (online.kind, online.replayed, online.device) == (
        EventKind.DEVICE_ONLINE,
        True,
        "esp-front",
    )
    offline = decode_one(codec, "esp-front/avty", b"offline")
    assert (offline.kind, offline.replayed) == (EventKind.DEVICE_OFFLINE, False)
    assert codec.decode(inbound("esp-front/avty", b"offline")) == []


def test_discovery_and_command_topics_are_skipped():
    """Home Assistant discovery documents and commands to the device are not events."""
    codec = make_codec("esp-rfid")
    assert codec.decode(inbound("homeassistant/lock/esp-front/lock/config", {"name": "x"})) == []
    assert codec.decode(inbound("esp-front/cmd", {"cmd": "opendoor"})) == []


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"time": 1605991375}, "malformed"),
        ({"type": 5}, "wrong_type"),
        (access(access=5), "wrong_type"),
        (access(access=[]), "wrong_type"),
        (access(doorName=[1, 2]), "wrong_type"),
        (access(time="1605991375"), "wrong_type"),
        (access(hostname=["esp"]), "wrong_type"),
        (access(uid={"id": 1}), "wrong_type"),
        (access(username=7), "wrong_type"),
        (json.loads(ESP_DOOR_OPEN) | {"desc": 5}, "wrong_type"),
    ],
)
def test_wrong_types_are_decode_errors(payload, kind):
    """Known fields of the wrong type are refused as wrong_type; a missing type is malformed."""
    with pytest.raises(DecodeError) as caught:
        make_codec("esp-rfid").decode(inbound(SEND, payload))
    assert caught.value.kind == kind


def test_simulator_traffic_decodes():
    """Every step the demo's esp-rfid simulator renders decodes to the kind it stands for."""
    renderer = EspRfidFormat()
    codec = make_codec("esp-rfid")
    expected = {
        "swipe": EventKind.ACCESS_GRANTED,
        "deny": EventKind.ACCESS_DENIED,
        "exit": EventKind.EXIT_REQUEST,
        "open": EventKind.DOOR_OPENED,
        "close": EventKind.DOOR_CLOSED,
        "forced": EventKind.DOOR_FORCED,
        "held": EventKind.DOOR_HELD_OPEN,
        "heartbeat": EventKind.DEVICE_HEARTBEAT,
    }
    for action, kind in expected.items():
        (publication,) = renderer.render(Step(at=0, action=action, card=8165537), RECEIVED)
        assert decode_one(codec, publication.topic, publication.payload).kind is kind, action


def test_decode_command_maps_door_name(tmp_path, monkeypatch, capsysbinary):
    """`doorwatch decode --format esp-rfid -c CONFIG` maps doorName to the site door."""
    config = write_site(
        tmp_path,
        """
        controllers:
          - {id: esp, codec: esp-rfid, topics: ["esp-rfid/+/send"], doors: {"Front door": front}}
        """,
    )
    code, out, err = run_cli(
        monkeypatch,
        capsysbinary,
        ["decode", "--format", "esp-rfid", "--topic", "esp-rfid/x/send", "-c", str(config)],
        json.dumps(access()).encode(),
    )
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["kind"], printed["door"], printed["credential"]) == (
        "access.granted",
        "front",
        "****5537",
    )


def test_decode_command_bad_input_is_one_line_without_traceback():
    """A payload of the wrong type exits 2 with one line naming the field."""
    code, out, err = run_cli_process(
        ["decode", "--format", "esp-rfid", "--topic", SEND], json.dumps(access(access=5)).encode()
    )
    assert code == 2
    assert out == ""
    assert (
        err.strip()
        == "decode: wrong_type: field access must be a string or a non-empty array of strings, got number"
    )
