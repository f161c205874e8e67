"""The ONVIF topic table and the quirks of real cameras.

Every message here is SYNTHETIC: built from the ONVIF spec tables (Door Control, Access
Control, DeviceIo, Imaging, Analytics) and from the camera quirks collected in the project's
ONVIF research notes (topic suffixes, nested prefixes, "1"/"active" booleans, broken
timestamps, Initialized bursts). No real-device capture of Door/* topics exists to copy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

import pytest
from structlog.testing import capture_logs

from doorwatch.adapters.onvif.messages import parse_notifications, parse_onvif_time
from doorwatch.adapters.onvif.normalise import (
    Normaliser,
    decode_envelope,
    map_inputs,
    parse_bool,
    topic_path,
)
from doorwatch.errors import DecodeError
from doorwatch.events import EventKind

NOW = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)
DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"


def _items(values: dict[str, str] | None, tag: str = "tt:SimpleItem") -> str:
    return "".join(
        f"<{tag} Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in (values or {}).items()
    )


def message(
    topic: str,
    source: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    *,
    key: dict[str, str] | None = None,
    op: str | None = "Changed",
    utc: str = "2026-03-02T10:00:00Z",
    dialect: str = DIALECT,
) -> str:
    prop = f" PropertyOperation={quoteattr(op)}" if op else ""
    key_xml = f"<tt:Key>{_items(key)}</tt:Key>" if key else ""
    return (
        '<wsnt:NotificationMessage xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
        'xmlns:tt="http://www.onvif.org/ver10/schema" '
        'xmlns:tns1="http://www.onvif.org/ver10/topics" '
        'xmlns:tnsaxis="http://www.axis.com/2009/event/topics" '
        'xmlns:tnshik="http://www.hikvision.com/2011/event/topics">'
        f"<wsnt:Topic Dialect={quoteattr(dialect)}>{topic}</wsnt:Topic>"
        f"<wsnt:Message><tt:Message UtcTime={quoteattr(utc)}{prop}>"
        f"<tt:Source>{_items(source)}</tt:Source>{key_xml}<tt:Data>{_items(data)}</tt:Data>"
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


def pull_response(*messages: str, current: str = "2026-03-02T10:00:05Z") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tev="http://www.onvif.org/ver10/events/wsdl"><env:Body>'
        f"<tev:PullMessagesResponse><tev:CurrentTime>{current}</tev:CurrentTime>"
        "<tev:TerminationTime>2026-03-02T10:10:05Z</tev:TerminationTime>"
        f"{''.join(messages)}</tev:PullMessagesResponse></env:Body></env:Envelope>"
    ).encode()


def decode(xml: str | bytes, source: str = "cam-1"):
    payload = xml.encode() if isinstance(xml, str) else xml
    return decode_envelope(payload, source=source, received_at=NOW)


def one(xml: str):
    events = decode(xml)
    assert len(events) == 1, events
    return events[0]


K = EventKind
DOOR = {"DoorToken": "Door_1"}
AP = {"AccessPointToken": "AP_1"}
RULE = {
    "VideoSourceConfigurationToken": "VideoSource_1",
    "VideoAnalyticsConfigurationToken": "Analytics_1",
    "Rule": "MyRule",
}

# (topic, source, data) -> (kind, door, reason); SYNTHETIC, from the spec tables.
# fmt: off
TABLE = [
    # Door Control: DoorPhysicalState, DoorAlarm, DoorMode, LockPhysicalState, DoorWarning.
    ("tns1:Door/State/DoorPhysicalState", DOOR, {"State": "Open"}, K.DOOR_OPENED, "Door_1", "Open"),
    ("tns1:Door/State/DoorPhysicalState", DOOR, {"State": "Closed"}, K.DOOR_CLOSED, "Door_1", "Closed"),
    ("tns1:Door/State/DoorAlarm", DOOR, {"State": "DoorForcedOpen"}, K.DOOR_FORCED, "Door_1", "DoorForcedOpen"),
    ("tns1:Door/State/DoorAlarm", DOOR, {"State": "DoorOpenTooLong"}, K.DOOR_HELD_OPEN, "Door_1", "DoorOpenTooLong"),
    ("tns1:Door/State/DoorAlarm", DOOR, {"State": "Normal"}, K.DOOR_ALARM_CLEARED, "Door_1", "Normal"),
    ("tns1:Door/State/DoorMode", DOOR, {"State": "Locked"}, K.DOOR_LOCKED, "Door_1", "Locked"),
    ("tns1:Door/State/DoorMode", DOOR, {"State": "LockedDown"}, K.DOOR_LOCKED, "Door_1", "LockedDown"),
    ("tns1:Door/State/DoorMode", DOOR, {"State": "Unlocked"}, K.DOOR_UNLOCKED, "Door_1", "Unlocked"),
    ("tns1:Door/State/DoorMode", DOOR, {"State": "Accessed"}, K.DOOR_UNLOCKED, "Door_1", "Accessed"),
    ("tns1:Door/State/LockPhysicalState", DOOR, {"State": "Locked"}, K.DOOR_LOCKED, "Door_1", "Locked"),
    ("tns1:Door/State/DoorWarning", DOOR, {"State": "true"}, K.DOOR_HELD_WARNING, "Door_1", None),
    # Access Control: decisions on an access point.
    ("tns1:AccessControl/AccessGranted/Anonymous", AP, {"External": "false"}, K.ACCESS_GRANTED, "AP_1", None),
    ("tns1:AccessControl/Denied/Credential", AP, {"Reason": "CredentialExpired"}, K.ACCESS_DENIED, "AP_1", "CredentialExpired"),
    ("tns1:AccessControl/Denied/Credential", AP, {"Reason": "Tailgating"}, K.ACCESS_DENIED, "AP_1", "Other (Tailgating)"),
    ("tns1:AccessControl/Denied/Anonymous", AP, {"Reason": "NotPermittedAtThisTime"}, K.ACCESS_DENIED, "AP_1", "NotPermittedAtThisTime"),
    ("tns1:AccessControl/Denied/CredentialNotFound", AP, {}, K.ACCESS_DENIED, "AP_1", "CredentialNotFound"),
    ("tns1:AccessControl/Denied/Authentication/InvalidPIN", AP, {}, K.ACCESS_DENIED, "AP_1", "InvalidPIN"),
    ("tns1:AccessControl/Duress", AP, {"Reason": "PIN"}, K.ACCESS_DURESS, "AP_1", "PIN"),
    # DeviceIo digital input and vendor alarm inputs.
    ("tns1:Device/Trigger/DigitalInput", {"InputToken": "AlarmIn_1"}, {"LogicalState": "true"}, K.INPUT_ACTIVE, "AlarmIn_1", None),
    ("tns1:Device/Trigger/DigitalInput", {"InputToken": "00000"}, {"LogicalState": "false"}, K.INPUT_INACTIVE, "00000", None),
    ("tns1:Device/tnsaxis:IO/Port", {"port": "1"}, {"state": "1"}, K.INPUT_ACTIVE, "1", None),
    ("tns1:Device/Trigger/tnshik:AlarmIn", {"AlarmInToken": "AlarmIn_2"}, {"State": "false"}, K.INPUT_INACTIVE, "AlarmIn_2", None),
    # Motion: standard detectors and vendor variants.
    ("tns1:RuleEngine/CellMotionDetector/Motion", RULE, {"IsMotion": "true"}, K.CAMERA_MOTION, None, None),
    ("tns1:VideoSource/MotionAlarm", {"Source": "VideoSource_1"}, {"State": "false"}, K.CAMERA_MOTION_STOPPED, None, None),
    ("tns1:RuleEngine/MotionRegionDetector/Motion", {"VideoSource": "0", "RuleName": "Door"}, {"State": "1"}, K.CAMERA_MOTION, None, None),
    ("tns1:RuleEngine/FieldDetector/ObjectsInside", RULE, {"IsInside": "true"}, K.CAMERA_MOTION, None, None),
    ("tns1:RuleEngine/LineDetector/Crossed", RULE, {"ObjectId": "7"}, K.CAMERA_MOTION, None, None),
    ("tns1:RuleEngine/MyRuleDetector/PeopleDetect", {"Source": "000"}, {"IsPeople": "true"}, K.CAMERA_MOTION, None, None),
    ("tns1:RuleEngine/MyRuleDetector/VehicleDetect", {"Source": "000"}, {"IsVehicle": "false"}, K.CAMERA_MOTION_STOPPED, None, None),
    ("tns1:RuleEngine/PeopleDetector/People", {"VideoSourceConfigurationToken": "vsconf"}, {"IsPeople": "true"}, K.CAMERA_MOTION, None, None),
    ("tns1:VideoAnalytics/tnsaxis:MotionDetection", {"window": "0"}, {"motion": "1"}, K.CAMERA_MOTION, None, None),
    # Tamper: tamper detector, scene change, signal loss, Axis tampering.
    ("tns1:RuleEngine/TamperDetector/Tamper", RULE, {"IsTamper": "true"}, K.CAMERA_TAMPER, None, None),
    ("tns1:RuleEngine/TamperDetector/Tamper", RULE, {"IsTamper": "false"}, K.CAMERA_TAMPER_CLEARED, None, None),
    ("tns1:VideoSource/GlobalSceneChange/ImagingService", {"Source": "VideoSource_1"}, {"State": "true"}, K.CAMERA_TAMPER, None, None),
    ("tns1:VideoSource/GlobalSceneChange/AnalyticsService", {"Source": "VideoSource_1"}, {"State": "false"}, K.CAMERA_TAMPER_CLEARED, None, None),
    ("tns1:VideoSource/SignalLoss", {"Source": "VideoSource_1"}, {"State": "true"}, K.CAMERA_TAMPER, None, None),
    ("tns1:VideoSource/tnsaxis:Tampering", {"channel": "1"}, {"tampering": "1"}, K.CAMERA_TAMPER, None, None),
]
# fmt: on


@pytest.mark.parametrize(
    "case", TABLE, ids=lambda case: f"{case[0]}={next(iter(case[2].values()), '')}"
)
def test_spec_topic_table(case):
    """Each spec topic (synthetic message) maps to its canonical kind, door reference and
    reason; the camera id is source, device and camera."""
    topic, source, data, kind, door, reason = case
    event = one(message(topic, source, data))
    assert event.kind is kind
    assert event.door == door
    assert event.door_ref == door
    assert event.reason == reason
    assert (event.source, event.device, event.camera) == ("cam-1", "cam-1", "cam-1")
    assert event.replayed is False
    assert event.received_at == NOW
    assert event.device_time == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_access_granted_masks_credential_and_keeps_holder():
    """An access grant carries the holder name and only the last digits of the credential."""
    event = one(
        message(
            "tns1:AccessControl/AccessGranted/Credential",
            AP,
            {"CredentialToken": "Credential_8165537", "CredentialHolderName": "Ann Lee"},
            op=None,
        )
    )
    assert event.kind is K.ACCESS_GRANTED
    assert event.holder == "Ann Lee"
    assert event.credential is not None
    assert event.credential.endswith("5537")
    assert "8165537" not in event.credential


def test_denied_identifier_and_legacy_card_are_masked():
    """Identifier values and legacy Card numbers are credentials: masked, never raw."""
    ident = one(
        message(
            "tns1:AccessControl/Denied/Identifier",
            AP,
            {"IdentifierType": "pt:Card", "IdentifierValue": "04A2B3C4D5", "Reason": "Other"},
            op=None,
        )
    )
    card = one(
        message(
            "tns1:AccessControl/Denied/CredentialNotFound/Card", AP, {"Card": "12345678"}, op=None
        )
    )
    assert ident.credential is not None
    assert ident.credential.endswith("C4D5")
    assert "04A2" not in ident.credential
    assert card.reason == "CredentialNotFound"
    assert card.credential is not None
    assert "1234" not in card.credential


@pytest.mark.parametrize(
    "topic",
    [
        "tns1:Monitoring/ProcessorUsage",
        "tns1:AccessControl/AccessTaken/Credential",
        "tns1:AccessPoint/State/Enabled",
        "tns1:Device/Trigger/Relay",
        "tns1:VideoSource/ImageTooDark/ImagingService",
    ],
)
def test_known_topics_that_carry_nothing_are_dropped(topic):
    """Known topics doorwatch does not act on (CPU load, relays, image quality, access
    taken) produce no event and are not reported as unknown."""
    with capture_logs() as logs:
        assert decode(message(topic, {"Source": "x"}, {"Value": "1"})) == []
    assert logs == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True), ("TRUE", True), ("1", True), ("active", True), ("On", True),
        ("false", False), ("0", False), ("inactive", False), ("OFF", False), (" true ", True),
        ("maybe", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_booleans(value, expected):
    """Booleans are read as cameras write them: true/1/active/on, any case."""
    assert parse_bool(value) is expected


def test_unreadable_boolean_on_a_known_topic_is_an_unknown_event():
    """A value that is not a boolean is kept as an unknown event naming topic and value."""
    event = one(message("tns1:VideoSource/MotionAlarm", {"Source": "1"}, {"State": "maybe"}))
    assert event.kind is K.UNKNOWN
    assert "maybe" in (event.reason or "")


@pytest.mark.parametrize(
    "topic",
    [
        "tns1:RuleEngine/CellMotionDetector/Motion",
        "tns1:RuleEngine/CellMotionDetector/Motion//.",
        "tns1:RuleEngine/CellMotionDetector/Motion/",
        "tns1:RuleEngine/CellMotionDetector/Motion/.",
        "tns1:RuleEngine/tns1:CellMotionDetector/tns1:Motion",
        "tns1:tns1:RuleEngine/CellMotionDetector/Motion",
        "\n   tns1:RuleEngine/CellMotionDetector/Motion\n  ",
        "TNS1:ruleengine/cellmotiondetector/motion",
    ],
)
def test_topic_spelling_quirks(topic):
    """Suffixes //. and /, nested or doubled tns1: prefixes, whitespace and case all name
    the same topic, with the same dedupe key."""
    reference = one(message("tns1:RuleEngine/CellMotionDetector/Motion", RULE, {"IsMotion": "1"}))
    event = one(message(topic, RULE, {"IsMotion": "1"}))
    assert event.kind is K.CAMERA_MOTION
    assert event.dedupe_key == reference.dedupe_key


def test_topic_path_strips_prefixes_and_suffixes():
    """topic_path keeps local names only."""
    assert topic_path("tns1:Device/tnsaxis:IO/Port//.") == "Device/IO/Port"


def test_polluted_dialect_is_ignored():
    """A Dialect attribute polluted with namespace declarations does not matter."""
    event = one(
        message(
            "tns1:VideoSource/MotionAlarm",
            {"Source": "1"},
            {"State": "true"},
            dialect=f"{DIALECT} xmlns:tns1=http://www.onvif.org/ver10/topics",
        )
    )
    assert event.kind is K.CAMERA_MOTION


def test_key_as_simple_item_description_is_tolerated():
    """Key items written as SimpleItemDescription (a type, not a value) are skipped."""
    xml = message(
        "tns1:RuleEngine/FieldDetector/ObjectsInside", RULE, {"IsInside": "true"}
    ).replace(
        "<tt:Data>",
        '<tt:Key><tt:SimpleItemDescription Name="ObjectId" Type="xs:integer"/></tt:Key><tt:Data>',
    )
    assert one(xml).kind is K.CAMERA_MOTION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T10:00:00Z", datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
        ("2026-03-02T10:00:00.250Z", datetime(2026, 3, 2, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-03-02T11:00:00+01:00", datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
        ("2026-03-02T10:00:00", datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
        ("2010-01-01-00:00:00", datetime(2010, 1, 1, tzinfo=UTC)),
        ("2023-05-15T-07:10:32Z", datetime(2023, 5, 15, 7, 10, 32, tzinfo=UTC)),
        ("2024-08-17T00:61:16Z", datetime(2024, 8, 17, 1, 1, 16, tzinfo=UTC)),
        ("0000-00-00T00:00:00Z", None),
        ("not a time", None),
        ("", None),
    ],
)
def test_camera_timestamps(text, expected):
    """Timestamps as cameras write them: '-' for 'T', overflowing minutes, Hikvision zeros."""
    assert parse_onvif_time(text) == expected


@pytest.mark.parametrize("utc", ["0000-00-00T00:00:00Z", "2000-01-01T00:00:12Z", "garbage"])
def test_implausible_message_times_give_no_device_time(utc):
    """A zero date, an unset camera clock (year 2000) or garbage is no device_time, and
    the event still arrives with a stable dedupe key."""
    xml = message("tns1:VideoSource/MotionAlarm", {"Source": "1"}, {"State": "true"}, utc=utc)
    first, second = one(xml), one(xml)
    assert first.kind is K.CAMERA_MOTION
    assert first.device_time is None
    assert first.dedupe_key == second.dedupe_key


def test_initialized_is_a_replayed_state_snapshot():
    """PropertyOperation=Initialized is state (replayed), never an alarm edge."""
    event = one(
        message("tns1:Door/State/DoorAlarm", DOOR, {"State": "DoorForcedOpen"}, op="Initialized")
    )
    assert event.kind is K.DOOR_FORCED
    assert event.replayed is True


def test_deleted_property_reads_as_off():
    """A Deleted boolean property (an object left the field) is its 'off' state; a Deleted
    enumeration says nothing."""
    gone = one(message("tns1:RuleEngine/FieldDetector/ObjectsInside", RULE, {}, op="Deleted"))
    assert gone.kind is K.CAMERA_MOTION_STOPPED
    assert decode(message("tns1:Door/State/DoorMode", DOOR, {}, op="Deleted")) == []


def test_unknown_values_and_unknown_state():
    """'Unknown' door states carry nothing; a value outside the enumeration is unknown."""
    assert decode(message("tns1:Door/State/DoorPhysicalState", DOOR, {"State": "Unknown"})) == []
    fault = one(message("tns1:Door/State/DoorPhysicalState", DOOR, {"State": "Fault"}))
    assert fault.kind is K.UNKNOWN
    assert "Fault" in (fault.reason or "")


def test_dedupe_key_is_stable_and_distinguishes():
    """The dedupe key is the same for the same message pulled twice, and differs by data,
    source items, time, property operation and camera."""
    base = {"topic": "tns1:Device/Trigger/DigitalInput", "source": {"InputToken": "1"}}
    key = lambda **kw: one(message(data={"LogicalState": "true"}, **{**base, **kw})).dedupe_key  # noqa: E731
    reference = key()
    assert reference == key()
    assert reference.startswith("onvif:cam-1:")
    assert reference != one(message(data={"LogicalState": "false"}, **base)).dedupe_key
    assert reference != key(source={"InputToken": "2"})
    assert reference != key(utc="2026-03-02T10:00:01Z")
    assert reference != key(op="Initialized")
    other_camera = decode(message(data={"LogicalState": "true"}, **base), source="cam-2")
    assert reference != other_camera[0].dedupe_key


def test_untrusted_clock_salts_live_events_only():
    """With an untrusted camera clock, live events get the receipt in their key (a frozen
    clock cannot merge two real events), snapshots keep their content key."""
    normaliser = Normaliser("cam-1")
    live = message("tns1:VideoSource/MotionAlarm", {"Source": "1"}, {"State": "true"})
    snap = message(
        "tns1:VideoSource/MotionAlarm", {"Source": "1"}, {"State": "true"}, op="Initialized"
    )
    notes = parse_notifications(pull_response(live, live, snap)).notifications
    trusted = normaliser.normalise(notes, received_at=NOW)
    salted = normaliser.normalise(
        notes, received_at=NOW, trust_device_time=False, receipt_salt="r1"
    )
    assert trusted[0].dedupe_key == trusted[1].dedupe_key
    assert salted[0].dedupe_key != salted[1].dedupe_key
    assert salted[0].dedupe_key != trusted[0].dedupe_key
    assert salted[2].dedupe_key == trusted[2].dedupe_key
    assert all(e.device_time is None for e in salted)


def test_unknown_topic_is_an_event_logged_once_with_a_pasteable_dump():
    """An unknown topic becomes an 'unknown' event each time, but is logged once per camera
    and topic, with a one-line XML dump that decodes to the same event."""
    normaliser = Normaliser("cam-1")
    xml = message("tns1:Door/State/DoorTamper", DOOR, {"State": "TamperDetected"})
    notes = parse_notifications(pull_response(xml, xml)).notifications
    with capture_logs() as logs:
        events = normaliser.normalise(notes, received_at=NOW)
        normaliser.normalise(notes, received_at=NOW)
    assert [e.kind for e in events] == [K.UNKNOWN, K.UNKNOWN]
    assert events[0].reason == "tns1:Door/State/DoorTamper"
    assert len(logs) == 1
    dump = logs[0]["message"]
    assert "\n" not in dump
    assert logs[0]["topic"] == "tns1:Door/State/DoorTamper"
    again = decode(dump)
    assert again[0].kind is K.UNKNOWN
    assert again[0].dedupe_key == events[0].dedupe_key


def test_map_inputs_turns_mapped_inputs_into_door_contacts():
    """Inputs listed in inputs: become door.opened/door.closed (polarity by door_open_when);
    unlisted inputs stay input events without a door."""
    events = decode(
        pull_response(
            message(
                "tns1:Device/Trigger/DigitalInput",
                {"InputToken": "AlarmIn_1"},
                {"LogicalState": "1"},
            ),
            message(
                "tns1:Device/Trigger/DigitalInput",
                {"InputToken": "AlarmIn_2"},
                {"LogicalState": "1"},
            ),
        )
    )
    mapped = map_inputs(events, {"AlarmIn_1": "east-entrance"})
    assert [(e.kind, e.door) for e in mapped] == [
        (K.DOOR_OPENED, "east-entrance"),
        (K.INPUT_ACTIVE, None),
    ]
    assert mapped[1].door_ref == "AlarmIn_2"
    inverted = map_inputs(events, {"AlarmIn_1": "east-entrance"}, "inactive")
    assert inverted[0].kind is K.DOOR_CLOSED


def test_pull_response_carries_camera_times():
    """CurrentTime and TerminationTime are read from a PullMessagesResponse (skew source)."""
    batch = parse_notifications(pull_response(current="2026-03-02T10:00:35Z"))
    assert batch.current_time == datetime(2026, 3, 2, 10, 0, 35, tzinfo=UTC)
    assert batch.notifications == ()


def test_notify_envelope_from_push_mode_decodes():
    """A wsnt:Notify body (push mode) carries the same messages."""
    xml = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        '<wsnt:Notify xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">'
        + message("tns1:VideoSource/SignalLoss", {"Source": "1"}, {"State": "true"})
        + "</wsnt:Notify></s:Body></s:Envelope>"
    )
    assert one(xml).kind is K.CAMERA_TAMPER


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<lolz>&lol3;</lolz>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<wsnt:NotificationMessage xmlns:wsnt='http://docs.oasis-open.org/wsn/b-2'>"
    "<wsnt:Topic>&xxe;</wsnt:Topic></wsnt:NotificationMessage>"
)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (BILLION_LAUGHS.encode(), "unsupported"),
        (XXE.encode(), "unsupported"),
        (b"<a>" * 100 + b"</a>" * 100, "too_deep"),
        (b"<a>" + b"<b/>" * 250_000 + b"</a>", "too_large"),
        (b"<a>" + b"x" * (5 * 1024 * 1024) + b"</a>", "too_large"),
        (b"<wsnt:Notific", "malformed"),
        (b"\xff\xfe<not utf-8>\xc3\x28", "malformed"),
        (b"   ", "malformed"),
        (b"<html><body>401</body></html>", "wrong_type"),
        (
            (
                b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
                b"<e:Fault><e:Reason><e:Text>Sender not authorized</e:Text></e:Reason>"
                b"</e:Fault></e:Body></e:Envelope>"
            ),
            "wrong_type",
        ),
    ],
)
def test_unsafe_or_wrong_xml_is_a_decode_error(payload, kind):
    """Entities, DTDs (XXE, billion laughs), deep or huge documents, broken XML, SOAP
    faults and other documents are refused with a one-line DecodeError."""
    with pytest.raises(DecodeError) as caught:
        decode(payload)
    assert caught.value.kind == kind
    assert "\n" not in caught.value.reason


def test_a_huge_unknown_message_is_clipped_in_the_log():
    """A camera that sends megabytes under an unknown topic gets one short log line."""
    normaliser = Normaliser("cam-1")
    xml = message("tns1:Vendor/Huge", DOOR, {"Blob": "x" * 200_000})
    notes = parse_notifications(pull_response(xml)).notifications
    with capture_logs() as logs:
        normaliser.normalise(notes, received_at=NOW)
    (line,) = logs
    assert len(line["message"]) < 5000
    assert line["message"].endswith("...(clipped)")
    assert line["message_bytes"] > 200_000
