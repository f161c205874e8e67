"""The axis codec on Axis MQTT event bridge messages: IO ports, door states, access, time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from samples import (
    AXIS_DOOR_TOKEN,
    AXIS_PIR,
    AXIS_PORT,
    AXIS_PORT_TOPIC,
    RECEIVED,
    axis_event,
    captured_logs,
    decode_one,
    inbound,
    make_codec,
    run_cli,
    run_cli_process,
    write_site,
)

from doorwatch.errors import DecodeError
from doorwatch.events import EventKind

SERIAL = "B8A44F000001"
DOOR_TOPIC = f"axis/{SERIAL}/event/tns:onvif/Door/State"
SAMPLE_TIME = datetime(2026, 7, 29, 11, 39, 10, 144000, tzinfo=UTC)  # 1785325150144 ms


def test_io_port_sample_is_an_input_with_the_port_as_door_reference():
    """The field note's IO port event (state "0") is input.inactive on port "1" of the serial
    in the topic, with the epoch-millisecond timestamp as trustworthy device_time."""
    codec = make_codec("axis", id="axis-a1601")
    event = decode_one(codec, AXIS_PORT_TOPIC, AXIS_PORT)
    assert event.kind is EventKind.INPUT_INACTIVE
    assert event.source == "axis-a1601"
    assert event.device == SERIAL
    assert event.door == event.door_ref == "1"
    assert event.reason == "port 1"
    assert event.device_time == SAMPLE_TIME
    assert event.received_at == RECEIVED
    assert event.replayed is False
    assert event.credential is None
    assert event.dedupe_key.startswith(f"axis:{SERIAL}:")
    # A redelivery has the same key; the other state is another event.
    assert decode_one(codec, AXIS_PORT_TOPIC, AXIS_PORT).dedupe_key == event.dedupe_key
    active = decode_one(codec, AXIS_PORT_TOPIC, AXIS_PORT.replace(b'"state":"0"', b'"state":"1"'))
    assert active.kind is EventKind.INPUT_ACTIVE
    assert active.dedupe_key != event.dedupe_key


def test_pir_sample_is_motion_of_the_device():
    """Kane610/axis's PIR sample: motion stopped (state "0") on the device, no door."""
    topic = "axis/ACCC8E000000/event/tns:onvif/Device/tns:axis/Sensor/PIR/$source/sensor/0"
    event = decode_one(make_codec("axis"), topic, AXIS_PIR)
    assert event.kind is EventKind.CAMERA_MOTION_STOPPED
    assert event.device == "ACCC8E000000"
    assert event.door is None
    assert event.reason == "PIR sensor 0"
    assert event.device_time == datetime(2020, 5, 21, 7, 13, 10, 230000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("topic", "state", "kind"),
    [
        ("onvif:Door/State/DoorPhysicalState", "Open", EventKind.DOOR_OPENED),
        ("onvif:Door/State/DoorPhysicalState", "Closed", EventKind.DOOR_CLOSED),
        ("onvif:Door/State/DoorPhysicalState", "Fault", EventKind.UNKNOWN),
        ("onvif:Door/State/DoorAlarm", "DoorForcedOpen", EventKind.DOOR_FORCED),
        ("tns1:Door/State/DoorAlarm", "DoorOpenTooLong", EventKind.DOOR_HELD_OPEN),
        ("onvif:Door/State/DoorAlarm", "Normal", EventKind.DOOR_ALARM_CLEARED),
        ("onvif:Door/State/DoorWarning", "1", EventKind.DOOR_HELD_WARNING),
        ("onvif:Door/State/DoorMode", "Locked", EventKind.DOOR_LOCKED),
        ("onvif:Door/State/DoorMode", "LockedDown", EventKind.DOOR_LOCKED),
        ("onvif:Door/State/DoorMode", "Unlocked", EventKind.DOOR_UNLOCKED),
        ("onvif:Door/State/DoorMode", "Accessed", EventKind.DOOR_UNLOCKED),
        ("onvif:Door/State/LockPhysicalState", "Unlocked", EventKind.DOOR_UNLOCKED),
        ("onvif:Door/State/DoorTamper", "TamperDetected", EventKind.INPUT_ACTIVE),
        ("onvif:Door/State/DoorTamper", "NotInTamper", EventKind.INPUT_INACTIVE),
        ("onvif:Door/State/DoorFault", "FaultDetected", EventKind.INPUT_ACTIVE),
    ],
)
def test_door_state_topics(topic, state, kind):
    """Door physical state, alarms (forced, open too long, cleared), warning, mode, lock,
    tamper and fault map to their kinds on the DoorToken."""
    event = decode_one(
        make_codec("axis"),
        DOOR_TOPIC,
        axis_event(topic, {"DoorToken": AXIS_DOOR_TOKEN}, {"State": state}),
    )
    assert event.kind is kind
    assert event.door_ref == AXIS_DOOR_TOKEN
    assert event.device == SERIAL
    assert event.device_time == SAMPLE_TIME
    assert state in (event.reason or "")


def test_end_of_a_door_warning_is_no_event():
    """A warning ending is no event: the door closed, or the held-open alarm took over (a
    cleared alarm here would wipe that alarm)."""
    payload = axis_event(
        "onvif:Door/State/DoorWarning", {"DoorToken": AXIS_DOOR_TOKEN}, {"State": "0"}
    )
    assert make_codec("axis").decode(inbound(DOOR_TOPIC, payload)) == []


def test_access_granted_with_holder_and_masked_credential():
    """AccessGranted names the access point, the holder, and a masked credential token."""
    payload = axis_event(
        "onvif:AccessControl/AccessGranted/Credential",
        {"AccessPointToken": "Axis-ap-east"},
        {"CredentialToken": "cred-8165537", "CredentialHolderName": "Ann Lee"},
    )
    event = decode_one(make_codec("axis"), f"axis/{SERIAL}/event/x", payload)
    assert event.kind is EventKind.ACCESS_GRANTED
    assert event.door_ref == "Axis-ap-east"
    assert event.holder == "Ann Lee"
    assert event.credential == "********5537"
    assert event.reason == "AccessGranted/Credential"


@pytest.mark.parametrize(
    ("topic", "source", "kind", "reason", "door_ref"),
    [
        (
            "onvif:AccessControl/Denied/CredentialNotFound/Card",
            {"AccessPointToken": "ap"},
            EventKind.ACCESS_DENIED,
            "Denied/CredentialNotFound/Card",
            "ap",
        ),
        (
            "onvif:AccessControl/Denied/Authentication/InvalidPIN",
            {"AccessPointToken": "ap"},
            EventKind.ACCESS_DENIED,
            "Denied/Authentication/InvalidPIN",
            "ap",
        ),
        (
            "onvif:AccessControl/Duress",
            {"AccessPointToken": "ap"},
            EventKind.ACCESS_DURESS,
            "duress",
            "ap",
        ),
        (
            "onvif:Credential/State/ApbViolation",
            {"AccessPointToken": "ap"},
            EventKind.ACCESS_DENIED,
            "anti-passback",
            "ap",
        ),
        (
            "onvif:IdPoint/axis:Request/REX",
            {"IdPointToken": "idp-1"},
            EventKind.EXIT_REQUEST,
            "REX",
            "idp-1",
        ),
        (
            "onvif:IdPoint/axis:Tampering",
            {"IdPointToken": "idp-1"},
            EventKind.INPUT_ACTIVE,
            "reader tamper 1",
            None,
        ),
        ("onvif:Device/axis:Casing/Open", {}, EventKind.INPUT_ACTIVE, "casing open 1", None),
    ],
)
def test_access_and_device_topics(topic, source, kind, reason, door_ref):
    """Denials keep their sub-topic as reason; duress, anti-passback, REX and device tamper
    map to their kinds (device tamper is an input, not a forced door)."""
    payload = axis_event(topic, source, {"State": "1"})
    event = decode_one(make_codec("axis"), f"axis/{SERIAL}/event/x", payload)
    assert (event.kind, event.reason, event.door_ref) == (kind, reason, door_ref)


def test_serial_in_the_payload_wins_and_topic_can_come_from_the_mqtt_topic():
    """includeSerialNumberInPayload names the device; without a topic field the event topic is
    read from the MQTT topic after /event/."""
    body = json.loads(AXIS_PORT) | {"serialNumber": "ACCC8E999999"}
    del body["topic"]
    event = decode_one(make_codec("axis"), AXIS_PORT_TOPIC, body)
    assert event.device == "ACCC8E999999"
    assert event.kind is EventKind.INPUT_INACTIVE


def test_system_ready_spelling_and_retained_property_events():
    """Status/Systemready (either spelling) is device.online; a retained (property) event is
    replayed state."""
    codec = make_codec("axis")
    payload = axis_event("tns1:Device/tnsaxis:Status/Systemready", {}, {"ready": "1"})
    event = decode_one(codec, f"axis/{SERIAL}/event/x", payload, retained=True)
    assert (event.kind, event.replayed, event.door) == (EventKind.DEVICE_ONLINE, True, None)


def test_unhandled_topics_give_no_event_and_are_logged_once():
    """Analytics and other topics are no door events; each new topic is logged once."""
    codec = make_codec("axis")
    payload = axis_event(
        "axis:CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1", {}, {"active": "1"}
    )
    with captured_logs() as logs:
        assert codec.decode(inbound(f"axis/{SERIAL}/event/x", payload)) == []
        assert codec.decode(inbound(f"axis/{SERIAL}/event/x", payload)) == []
    assert [entry["event"] for entry in logs] == ["axis event topic ignored"]
    assert codec.decode(inbound(f"axis/{SERIAL}/event/connection", b"anything")) == []


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"not json", "malformed"),
        (json.loads(AXIS_PORT) | {"timestamp": "1785325150144"}, "wrong_type"),
        (json.loads(AXIS_PORT) | {"topic": 5}, "wrong_type"),
        (json.loads(AXIS_PORT) | {"message": []}, "wrong_type"),
        (
            {
                "topic": "onvif:Device/axis:IO/Port",
                "message": {"source": {"port": {"n": 1}}, "data": {}},
            },
            "wrong_type",
        ),
        (
            {
                "topic": "onvif:Device/axis:IO/Port",
                "message": {"source": {}, "data": [["state", "1"]]},
            },
            "wrong_type",
        ),
    ],
)
def test_wrong_shapes_are_decode_errors(payload, kind):
    """Non-JSON is malformed; known fields of the wrong type are wrong_type."""
    with pytest.raises(DecodeError) as caught:
        make_codec("axis").decode(inbound(AXIS_PORT_TOPIC, payload))
    assert caught.value.kind == kind


def test_decode_command_maps_the_door_token(tmp_path, monkeypatch, capsysbinary):
    """`doorwatch decode --format axis -c CONFIG` maps the DoorToken to the site door."""
    config = write_site(
        tmp_path,
        f"""
        controllers:
          - {{id: axis, codec: axis, topics: ["axis/#"], doors: {{"{AXIS_DOOR_TOKEN}": front}}}}
        """,
    )
    payload = axis_event(
        "onvif:Door/State/DoorAlarm", {"DoorToken": AXIS_DOOR_TOKEN}, {"State": "DoorForcedOpen"}
    )
    code, out, err = run_cli(
        monkeypatch,
        capsysbinary,
        ["decode", "--format", "axis", "--topic", DOOR_TOPIC, "-c", str(config)],
        payload,
    )
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["kind"], printed["door"], printed["device_time"]) == (
        "door.forced",
        "front",
        "2026-07-29T11:39:10.144Z",
    )


def test_decode_command_bad_input_is_one_line_without_traceback():
    """A string timestamp exits 2 with one line."""
    payload = json.dumps(json.loads(AXIS_PORT) | {"timestamp": "soon"}).encode()
    code, out, err = run_cli_process(
        ["decode", "--format", "axis", "--topic", AXIS_PORT_TOPIC], payload
    )
    assert (code, out) == (2, "")
    assert (
        err.strip()
        == "decode: wrong_type: field timestamp must be a number of milliseconds, got string"
    )
