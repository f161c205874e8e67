"""The uhppoted codec on uhppoted-mqtt's published shapes: envelopes, reasons, clocks, HMAC."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import orjson
import pytest
from samples import (
    RECEIVED,
    UHPPOTED_ALIVE,
    UHPPOTED_CONNECTED,
    UHPPOTED_GET_EVENT_EVENT,
    UHPPOTED_GET_STATUS_EVENT,
    UHPPOTED_NO_RESPONSE,
    captured_logs,
    decode_one,
    inbound,
    make_codec,
    run_cli,
    run_cli_process,
    uhppoted_envelope,
    uhppoted_event,
    write_site,
)

from doorwatch.adapters.mqtt.simulator import Step, UhppotedFormat
from doorwatch.errors import DecodeError
from doorwatch.events import Direction, EventKind

LIVE = "uhppoted/gateway/events/live"
FEED = "uhppoted/gateway/events"
SYSTEM = "uhppoted/gateway/system"


def test_get_status_sample_remote_open_is_an_authorised_grant():
    """The documented get-status event (reason 44, remote open) is access.granted at door 1,
    with the card masked, direction in, uhppoted's reason text and the event-id dedupe key."""
    codec = make_codec("uhppoted", id="uhppote")
    event = decode_one(codec, LIVE, uhppoted_envelope(UHPPOTED_GET_STATUS_EVENT))
    assert event.kind is EventKind.ACCESS_GRANTED
    assert event.source == "uhppote"
    assert event.device == "0"
    assert event.door == event.door_ref == "0:1"
    assert event.credential == "****5537"
    assert event.holder is None
    assert event.direction is Direction.IN
    assert event.reason == "remote open door"
    assert event.device_time is None  # No device_timezone: the label is the host's zone.
    assert event.received_at == RECEIVED
    assert event.replayed is False
    assert event.dedupe_key == "uhppoted:0:69"


def test_get_event_sample_with_reason_zero_is_unknown_and_keeps_no_card():
    """The documented get-event sample (door event, reason 0) has no known meaning: it is
    ``unknown`` at door 405419896:4, and the card number of a non-access event is dropped."""
    event = decode_one(make_codec("uhppoted"), LIVE, uhppoted_envelope(UHPPOTED_GET_EVENT_EVENT))
    assert event.kind is EventKind.UNKNOWN
    assert event.device == "405419896"
    assert event.door_ref == "405419896:4"
    assert event.credential is None
    assert event.direction is None
    assert event.reason == "event-type 2 reason 0"
    assert event.dedupe_key == "uhppoted:405419896:50"


@pytest.mark.parametrize(
    ("reason", "event_type", "granted", "expected"),
    [
        (1, 1, True, (EventKind.ACCESS_GRANTED, True, True)),
        (1, 1, False, (EventKind.ACCESS_DENIED, True, True)),
        (2, 1, True, (EventKind.ACCESS_GRANTED, True, True)),
        (6, 1, False, (EventKind.ACCESS_DENIED, True, True)),
        (7, 1, False, (EventKind.ACCESS_DENIED, True, True)),
        (8, 1, False, (EventKind.ACCESS_DENIED, True, True)),
        (13, 1, False, (EventKind.ACCESS_DENIED, True, True)),
        (18, 1, False, (EventKind.ACCESS_DENIED, True, True)),
        (20, 2, True, (EventKind.EXIT_REQUEST, True, False)),
        (23, 2, True, (EventKind.DOOR_OPENED, True, False)),
        (24, 2, True, (EventKind.DOOR_CLOSED, True, False)),
        (25, 2, True, (EventKind.ACCESS_GRANTED, True, False)),
        (28, 2, True, (EventKind.DEVICE_ONLINE, False, False)),
        (29, 2, True, (EventKind.DEVICE_ONLINE, False, False)),
        (31, 2, False, (EventKind.ACCESS_DENIED, True, True)),
        (34, 2, False, (EventKind.ACCESS_DENIED, True, True)),
        (37, 3, False, (EventKind.DOOR_HELD_OPEN, True, False)),
        (38, 3, False, (EventKind.DOOR_FORCED, True, False)),
        (39, 3, False, (EventKind.INPUT_ACTIVE, True, False)),
        (40, 3, False, (EventKind.DOOR_LOCKED, True, False)),
        (43, 3, False, (EventKind.INPUT_ACTIVE, True, False)),
        (44, 2, True, (EventKind.ACCESS_GRANTED, True, True)),
        (45, 2, True, (EventKind.ACCESS_GRANTED, True, True)),
        (99, 3, False, (EventKind.UNKNOWN, True, False)),
    ],
)
def test_reason_codes_map_to_kinds(reason, event_type, granted, expected):
    """Each reason code becomes its documented kind; doors only where a door is concerned,
    masked cards only on access events (never for the supervisor password, reason 25)."""
    kind, has_door, has_card = expected
    payload = uhppoted_envelope(
        uhppoted_event(
            **{
                "event-reason": reason,
                "event-type": event_type,
                "access-granted": granted,
                "event-reason-text": "",
            }
        )
    )
    event = decode_one(make_codec("uhppoted"), LIVE, payload)
    assert event.kind is kind
    assert event.door_ref == ("405419896:1" if has_door else None)
    assert event.credential == ("****5537" if has_card else None)
    access = kind in {EventKind.ACCESS_GRANTED, EventKind.ACCESS_DENIED, EventKind.EXIT_REQUEST}
    assert event.direction == (Direction.IN if access else None)
    assert event.reason  # uhppoted's own text, or the code table's when the text is empty.


def test_out_direction_and_zero_card_number():
    """direction 2 is out; a card number of 0 means no card and gives no credential."""
    payload = uhppoted_envelope(uhppoted_event(direction=2, **{"card-number": 0}))
    event = decode_one(make_codec("uhppoted"), LIVE, payload)
    assert event.direction is Direction.OUT
    assert event.credential is None


def test_overwritten_and_empty_events_give_nothing():
    """Event types 255 (overwritten) and 0 (none) record no occurrence."""
    codec = make_codec("uhppoted")
    assert (
        codec.decode(inbound(LIVE, uhppoted_envelope(uhppoted_event(**{"event-type": 255})))) == []
    )
    assert (
        codec.decode(
            inbound(LIVE, uhppoted_envelope(uhppoted_event(**{"event-type": 0, "event-id": 70})))
        )
        == []
    )


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (None, None),
        ("America/Los_Angeles", datetime(2021, 8, 10, 17, 28, 32, tzinfo=UTC)),
        ("UTC", datetime(2021, 8, 10, 10, 28, 32, tzinfo=UTC)),
    ],
)
def test_device_time_only_with_a_configured_controller_zone(zone, expected):
    """The timestamp is the controller's clock labelled with the host's zone: device_time is
    null unless device_timezone says which zone the controller keeps."""
    options = {"device_timezone": zone} if zone else {}
    codec = make_codec("uhppoted", **options)
    event = decode_one(codec, LIVE, uhppoted_envelope(UHPPOTED_GET_STATUS_EVENT))
    assert event.device_time == expected


@pytest.mark.parametrize(
    "stamp", ["", "2021-13-40 10:28:32 PDT", "yesterday", "2021-08-10T10:28:32Z"]
)
def test_unreadable_timestamps_leave_device_time_null(stamp):
    """A timestamp that is empty or not uhppoted's layout never fails the event."""
    codec = make_codec("uhppoted", device_timezone="UTC")
    event = decode_one(codec, LIVE, uhppoted_envelope(uhppoted_event(timestamp=stamp)))
    assert event.device_time is None
    assert event.kind is EventKind.ACCESS_GRANTED


def test_single_nesting_is_refused_as_wrong_type():
    """The envelope nests event twice; a single level is a wrong shape, not guessed at."""
    payload = json.dumps({"message": {"event": uhppoted_event()}}).encode()
    with pytest.raises(DecodeError) as caught:
        make_codec("uhppoted").decode(inbound(LIVE, payload))
    assert caught.value.kind == "wrong_type"


def test_encrypted_event_is_unsupported_with_the_fix():
    """With the library default encrypt=true, message.event is a base64 string: refused as
    unsupported, and the reason says which setting to turn off."""
    payload = json.dumps(
        {"message": {"signature": "c2ln", "key": "a2V5", "event": "U2FsdGVkX1+abc=="}}
    ).encode()
    with pytest.raises(DecodeError) as caught:
        make_codec("uhppoted").decode(inbound(LIVE, payload))
    assert caught.value.kind == "unsupported"
    assert "mqtt.security.outgoing.encrypt = false" in caught.value.reason


def signed(message: dict, key: bytes) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    mac = hmac.new(key, body, hashlib.sha256).hexdigest()
    return b'{"message":' + body + b',"hmac":"' + mac.encode() + b'"}'


@pytest.fixture
def hmac_codec(tmp_path):
    key_file = tmp_path / "hmac.key"
    key_file.write_text("sixteen-byte-key\n")
    return make_codec("uhppoted", hmac_key_file=str(key_file))


def test_hmac_verified_over_the_exact_message_bytes(hmac_codec):
    """With hmac_key_file, an event whose hmac matches the message JSON decodes normally."""
    payload = signed({"event": {"event": uhppoted_event()}}, b"sixteen-byte-key")
    event = decode_one(hmac_codec, LIVE, payload)
    assert event.kind is EventKind.ACCESS_GRANTED
    assert event.dedupe_key == "uhppoted:405419896:69"


@pytest.mark.parametrize(
    "payload",
    [
        signed({"event": {"event": uhppoted_event()}}, b"another-key"),
        uhppoted_envelope(uhppoted_event()),
        signed({"event": {"event": uhppoted_event()}}, b"sixteen-byte-key").replace(
            b'"event-id":69', b'"event-id":70'
        ),
        json.dumps({"message": {"event": {"event": uhppoted_event()}}, "hmac": 5}).encode(),
        json.dumps(UHPPOTED_ALIVE).encode(),
    ],
    ids=["wrong-key", "missing", "altered", "not-a-string", "bare-system-message"],
)
def test_hmac_mismatch_or_missing_is_a_signature_error(hmac_codec, payload):
    """A wrong key, a missing or mistyped hmac, or an altered message is refused (signature)."""
    with pytest.raises(DecodeError) as caught:
        hmac_codec.decode(inbound(LIVE, payload))
    assert caught.value.kind == "signature"


def test_a_second_message_member_cannot_ride_on_a_valid_hmac(hmac_codec):
    """Only the verified bytes are decoded: appending a second "message" member (which a
    last-wins JSON parser would read) does not change the event."""
    good = signed({"event": {"event": uhppoted_event()}}, b"sixteen-byte-key")
    forged = uhppoted_envelope(uhppoted_event(**{"event-reason": 38, "event-type": 3}))
    payload = good[:-1] + b',"message":' + orjson.dumps(json.loads(forged)["message"]) + b"}"
    event = decode_one(hmac_codec, LIVE, payload)
    assert event.kind is EventKind.ACCESS_GRANTED


def test_same_event_on_live_and_feed_has_one_key_and_feed_lag_is_replayed():
    """An event seen on events/live and again on the lagging events feed keeps its dedupe
    key (journaled once), and the feed copy is marked replayed (backlog, no alert)."""
    codec = make_codec("uhppoted")
    live = decode_one(codec, LIVE, uhppoted_envelope(uhppoted_event(**{"event-id": 80})))
    feed = decode_one(codec, FEED, uhppoted_envelope(uhppoted_event(**{"event-id": 80})))
    assert live.dedupe_key == feed.dedupe_key == "uhppoted:405419896:80"
    assert live.replayed is False
    assert feed.replayed is True


def test_retained_event_is_replayed_state():
    """A retained event (uhppoted retains events by default) is state replay, never an alert."""
    codec = make_codec("uhppoted")
    event = decode_one(
        codec,
        LIVE,
        uhppoted_envelope(uhppoted_event(**{"event-reason": 38, "event-type": 3})),
        retained=True,
    )
    assert event.kind is EventKind.DOOR_FORCED
    assert event.replayed is True


def test_event_id_gap_is_logged_once_and_late_events_are_backlog():
    """A jump over missing ids logs one warning naming the gap; the missing events arriving
    later (from the feed) are backlog, and the next in-order event logs nothing."""
    codec = make_codec("uhppoted", id="uhppote")
    with captured_logs() as logs:
        first = decode_one(codec, LIVE, uhppoted_envelope(uhppoted_event(**{"event-id": 100})))
        jump = decode_one(codec, LIVE, uhppoted_envelope(uhppoted_event(**{"event-id": 104})))
        late = decode_one(codec, FEED, uhppoted_envelope(uhppoted_event(**{"event-id": 102})))
        following = decode_one(codec, LIVE, uhppoted_envelope(uhppoted_event(**{"event-id": 105})))
    gaps = [entry for entry in logs if entry["event"] == "uhppoted event gap"]
    assert gaps == [
        {
            "event": "uhppoted event gap",
            "log_level": "warning",
            "source": "uhppote",
            "device": "405419896",
            "after": 100,
            "next": 104,
            "missing": 3,
        }
    ]
    assert [first.replayed, jump.replayed, late.replayed, following.replayed] == [
        False,
        False,
        True,
        False,
    ]
    # Gap tracking is per controller: another controller's ids are independent.
    other = decode_one(
        codec, LIVE, uhppoted_envelope(uhppoted_event(**{"device-id": 303986753, "event-id": 5}))
    )
    assert other.replayed is False


def test_alive_is_a_heartbeat_of_the_bridge():
    """alive messages are device.heartbeat of the bridge, named after the topic root."""
    event = decode_one(make_codec("uhppoted", id="uhppote"), SYSTEM, UHPPOTED_ALIVE)
    assert event.kind is EventKind.DEVICE_HEARTBEAT
    assert event.device == "uhppoted/gateway"
    assert event.door is None
    assert event.reason == "health-check: OK"
    assert event.dedupe_key.startswith("uhppoted:uhppoted/gateway:alive:health-check:")


def test_enveloped_system_message_and_bridge_id_option():
    """System messages inside the envelope (message.system) decode the same; bridge_id
    overrides the device name."""
    payload = {"message": {"system": UHPPOTED_ALIVE}}
    event = decode_one(make_codec("uhppoted", bridge_id="gateway-1"), SYSTEM, payload)
    assert event.kind is EventKind.DEVICE_HEARTBEAT
    assert event.device == "gateway-1"


def test_no_response_and_connected_alerts_are_offline_then_online_once():
    """ "<serial> no response for ..." is device.offline of that controller, repeated alerts
    add nothing, and "<serial> connected" is device.online."""
    codec = make_codec("uhppoted", id="uhppote")
    offline = decode_one(codec, SYSTEM, UHPPOTED_NO_RESPONSE)
    assert offline.kind is EventKind.DEVICE_OFFLINE
    assert offline.device == "405419896"
    assert offline.reason == "no response for 1m5s"
    assert offline.door is None
    assert offline.dedupe_key.startswith("uhppoted:405419896:offline:")
    assert codec.decode(inbound(SYSTEM, UHPPOTED_NO_RESPONSE)) == []
    online = decode_one(codec, SYSTEM, UHPPOTED_CONNECTED)
    assert online.kind is EventKind.DEVICE_ONLINE
    assert online.device == "405419896"
    assert online.dedupe_key != offline.dedupe_key


def test_retained_alert_is_replayed_and_other_alerts_are_unknown():
    """Alerts are retained by default: a retained one is replayed. Alerts that are neither
    offline nor online (clock not synchronised, the watchdog) are unknown with their text."""
    codec = make_codec("uhppoted")
    replayed = decode_one(codec, SYSTEM, UHPPOTED_NO_RESPONSE, retained=True)
    assert replayed.kind is EventKind.DEVICE_OFFLINE
    assert replayed.replayed is True
    clock = {
        "alert": {
            "subsystem": "health-check",
            "message": "UTC0311-L0x 405419896 system time not synchronized:2026-03-02 08:30:00 (5m3s)",
        }
    }
    event = decode_one(codec, SYSTEM, clock)
    assert event.kind is EventKind.UNKNOWN
    assert event.device == "405419896"
    assert event.reason.startswith("system time not synchronized")
    watchdog = {
        "alert": {
            "subsystem": "watchdog",
            "message": "'health-check' subsystem has not run since 2026-03-02 08:00:00 (5m)",
        }
    }
    event = decode_one(codec, SYSTEM, watchdog)
    assert event.kind is EventKind.UNKNOWN
    assert event.device == "uhppoted/gateway"


def test_requests_and_replies_on_the_same_root_are_not_events():
    """A broad subscription also brings the command API; requests and replies are skipped."""
    codec = make_codec("uhppoted")
    assert codec.decode(inbound("uhppoted/gateway/requests/device/status:get", b"{}")) == []
    reply = {"message": {"reply": {"response": {"device-id": 405419896}}}}
    assert codec.decode(inbound("uhppoted/gateway/replies", reply)) == []


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (uhppoted_event(**{"device-id": "405419896"}), "wrong_type"),
        (uhppoted_event(**{"event-id": None}), "malformed"),
        (uhppoted_event(**{"access-granted": "true"}), "wrong_type"),
        (uhppoted_event(**{"door-id": [1]}), "wrong_type"),
        (uhppoted_event(**{"card-number": {"n": 1}}), "wrong_type"),
        (uhppoted_event(**{"device-id": -1}), "wrong_type"),
        (uhppoted_event(**{"access-granted": None}), "malformed"),
    ],
)
def test_field_type_mismatches_are_decode_errors(event, kind):
    """Known fields of the wrong JSON type are wrong_type; missing required ones malformed."""
    with pytest.raises(DecodeError) as caught:
        make_codec("uhppoted").decode(inbound(LIVE, uhppoted_envelope(event)))
    assert caught.value.kind == kind


def test_simulator_traffic_decodes():
    """Every step the demo's uhppoted simulator renders decodes to the kind it stands for."""
    renderer = UhppotedFormat()
    codec = make_codec("uhppoted")
    expected = {
        "swipe": EventKind.ACCESS_GRANTED,
        "deny": EventKind.ACCESS_DENIED,
        "open": EventKind.DOOR_OPENED,
        "close": EventKind.DOOR_CLOSED,
        "forced": EventKind.DOOR_FORCED,
        "held": EventKind.DOOR_HELD_OPEN,
        "exit": EventKind.EXIT_REQUEST,
        "offline": EventKind.DEVICE_OFFLINE,
        "online": EventKind.DEVICE_ONLINE,
        "heartbeat": EventKind.DEVICE_HEARTBEAT,
    }
    for action, kind in expected.items():
        step = Step(at=0, action=action, door="405419896:2", card=8165537)
        (publication,) = renderer.render(step, RECEIVED)
        event = decode_one(codec, publication.topic, publication.payload)
        assert event.kind is kind, action


def test_decode_command_maps_the_door_through_the_config(tmp_path, monkeypatch, capsysbinary):
    """`doorwatch decode --format uhppoted -c CONFIG` prints the event with the site door."""
    config = write_site(
        tmp_path,
        """
        controllers:
          - id: uhppote
            codec: uhppoted
            topics: ["uhppoted/gateway/events/live"]
            doors: {"405419896:1": front}
        """,
    )
    code, out, err = run_cli(
        monkeypatch,
        capsysbinary,
        ["decode", "--format", "uhppoted", "--topic", LIVE, "-c", str(config)],
        uhppoted_envelope(uhppoted_event(**{"event-reason": 23, "event-type": 2})),
    )
    assert code == 0, err
    (line,) = out.splitlines()
    printed = json.loads(line)
    assert printed["kind"] == "door.opened"
    assert printed["door"] == "front"
    assert printed["door_ref"] == "405419896:1"
    assert printed["source"] == "uhppote"


def test_decode_command_bad_input_is_one_line_without_traceback():
    """Bad input exits non-zero with one line naming the problem, never a traceback."""
    code, out, err = run_cli_process(
        ["decode", "--format", "uhppoted", "--topic", LIVE],
        json.dumps({"message": {"event": "U2FsdGVkX1+abc=="}}).encode(),
    )
    assert code == 2
    assert out == ""
    assert err.strip().count("\n") == 0
    assert err.startswith("decode: unsupported:")
    assert "Traceback" not in err
