"""The shelly codec on Door/Window 2 topics: open/close strings, wake-up repeats, online."""

from __future__ import annotations

import json

import pytest
from samples import RECEIVED, decode_one, inbound, make_codec, run_cli, run_cli_process, write_site

from doorwatch.errors import DecodeError
from doorwatch.events import EventKind

DEVICE = "shellydw2-A1B2C3"
STATE = f"shellies/{DEVICE}/sensor/state"


def test_open_and_close_strings_and_wake_up_repeats():
    """sensor/state "open"/"close": the first value is replayed state, a repeat at the next
    wake-up is nothing, each real change is an event with a new key."""
    codec = make_codec("shelly", id="dw")
    first = decode_one(codec, STATE, b"open")
    assert first.kind is EventKind.DOOR_OPENED
    assert first.source == "dw"
    assert first.device == DEVICE
    assert first.door == first.door_ref == DEVICE
    assert first.reason == "sensor/state open"
    assert first.device_time is None  # No real-time clock.
    assert first.replayed is True
    assert first.received_at == RECEIVED
    assert first.dedupe_key.startswith(f"dw:{DEVICE}:open:")
    assert codec.decode(inbound(STATE, b"open")) == []
    closed = decode_one(codec, STATE, b"close")
    assert (closed.kind, closed.replayed, closed.reason) == (
        EventKind.DOOR_CLOSED,
        False,
        "sensor/state close",
    )
    reopened = decode_one(codec, STATE, b"open")
    assert (reopened.kind, reopened.replayed) == (EventKind.DOOR_OPENED, False)
    assert reopened.dedupe_key != first.dedupe_key


def test_online_false_between_wake_ups_is_not_offline_by_default():
    """online "true" is device.online; "false" (asleep) is ignored unless the option says
    otherwise, in which case it is device.offline."""
    codec = make_codec("shelly")
    online = decode_one(codec, f"shellies/{DEVICE}/online", b"true")
    assert (online.kind, online.device, online.door) == (EventKind.DEVICE_ONLINE, DEVICE, None)
    assert codec.decode(inbound(f"shellies/{DEVICE}/online", b"false")) == []
    assert codec.decode(inbound(f"shellies/{DEVICE}/online", b"true")) == []
    strict = make_codec("shelly", online_false_is_offline=True)
    decode_one(strict, f"shellies/{DEVICE}/online", b"true")
    offline = decode_one(strict, f"shellies/{DEVICE}/online", b"false")
    assert (offline.kind, offline.reason) == (EventKind.DEVICE_OFFLINE, "online false")
    assert strict.decode(inbound(f"shellies/{DEVICE}/online", b"false")) == []


def test_battery_report_is_a_heartbeat():
    """The battery report sent at each wake-up is the sensor's heartbeat."""
    event = decode_one(make_codec("shelly"), f"shellies/{DEVICE}/sensor/battery", b"87")
    assert (event.kind, event.reason, event.door) == (
        EventKind.DEVICE_HEARTBEAT,
        "battery 87%",
        None,
    )


def test_vibration_is_an_input_on_the_door():
    """sensor/vibration 1/0 is input.active/inactive with reason vibration (a knock or a pry)."""
    codec = make_codec("shelly")
    decode_one(codec, f"shellies/{DEVICE}/sensor/vibration", b"0")
    event = decode_one(codec, f"shellies/{DEVICE}/sensor/vibration", b"1")
    assert (event.kind, event.reason, event.door_ref, event.replayed) == (
        EventKind.INPUT_ACTIVE,
        "vibration",
        DEVICE,
        False,
    )


def test_retained_state_is_replayed_and_custom_prefixes_name_the_device():
    """A retained state is replayed; with a custom prefix the device is the prefix."""
    codec = make_codec("shelly")
    decode_one(codec, "site/dw/front/sensor/state", b"close")
    event = decode_one(codec, "site/dw/front/sensor/state", b"open", retained=True)
    assert (event.device, event.replayed, event.kind) == (
        "site/dw/front",
        True,
        EventKind.DOOR_OPENED,
    )


def test_other_sensor_topics_give_no_event():
    """tilt, lux, temperature and announcements are not door events."""
    codec = make_codec("shelly")
    for topic, payload in [
        (f"shellies/{DEVICE}/sensor/tilt", b"12"),
        (f"shellies/{DEVICE}/sensor/lux", b"300"),
        ("shellies/announce", json.dumps({"id": DEVICE}).encode()),
    ]:
        assert codec.decode(inbound(topic, payload)) == []


@pytest.mark.parametrize(
    ("topic", "payload", "kind"),
    [
        (STATE, b"ajar", "malformed"),
        (STATE, b"\xff\xfe", "malformed"),
        (STATE, b"o" * 100, "malformed"),
        (f"shellies/{DEVICE}/online", b"maybe", "malformed"),
        (f"shellies/{DEVICE}/sensor/battery", b"full", "wrong_type"),
        (f"shellies/{DEVICE}/sensor/battery", b"250", "malformed"),
        (f"shellies/{DEVICE}/sensor/vibration", b"shaking", "malformed"),
    ],
)
def test_bad_values_are_decode_errors(topic, payload, kind):
    """Values outside the documented strings are refused with one reason."""
    with pytest.raises(DecodeError) as caught:
        make_codec("shelly").decode(inbound(topic, payload))
    assert caught.value.kind == kind


def test_decode_command_maps_the_sensor_to_its_door(tmp_path, monkeypatch, capsysbinary):
    """`doorwatch decode --format shelly -c CONFIG` prints the site door."""
    config = write_site(
        tmp_path,
        f"""
        controllers:
          - {{id: dw, codec: shelly, topics: ["shellies/#"], doors: {{"{DEVICE}": gym}}}}
        """,
    )
    code, out, err = run_cli(
        monkeypatch,
        capsysbinary,
        ["decode", "--format", "shelly", "--topic", STATE, "-c", str(config)],
        b"close",
    )
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["kind"], printed["door"], printed["door_ref"]) == ("door.closed", "gym", DEVICE)


def test_decode_command_bad_input_is_one_line_without_traceback():
    """A value that is no door state exits 2 with one line."""
    code, out, err = run_cli_process(["decode", "--format", "shelly", "--topic", STATE], b"ajar")
    assert (code, out) == (2, "")
    assert err.strip() == "decode: malformed: sensor/state must be open or close"
