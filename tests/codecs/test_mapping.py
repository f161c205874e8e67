"""The mapping codec: configuration alone maps JSON and plain payloads to events."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError
from samples import (
    RECEIVED,
    captured_logs,
    decode_one,
    inbound,
    make_codec,
    run_cli,
    run_cli_process,
    write_site,
)

from doorwatch.adapters.mqtt.codecs import CODECS, ControllerConfig, mapping
from doorwatch.config import load_config
from doorwatch.errors import ConfigError, DecodeError
from doorwatch.events import Direction, EventKind


def docstring_controllers() -> dict:
    """The controllers of the example in the mapping module's docstring, validated."""
    doc = mapping.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\nWhere a value comes from", 1)[0]
    data = yaml.safe_load(textwrap.dedent(block))
    adapter = TypeAdapter(ControllerConfig)
    return {
        item["id"]: CODECS["mapping"](adapter.validate_python(item)) for item in data["controllers"]
    }


ACCESS = {
    "seq": 812,
    "ts": 1767189000123,
    "result": "granted",
    "reader": {"door": "front"},
    "badge": {"number": "8165537", "holder": "Ann"},
}


def test_docstring_example_plain_text_rule():
    """The documented panel: plain OPEN/CLOSED/FORCED on a topic naming device and door;
    values match exactly or ignoring case; a repeated state is no new event."""
    panel = docstring_controllers()["panel"]
    topic = "site/panel/p1/door/front/state"
    opened = decode_one(panel, topic, b"OPEN")
    assert opened.kind is EventKind.DOOR_OPENED
    assert opened.source == "panel"
    assert opened.device == "p1"
    assert opened.door == opened.door_ref == "front"
    assert opened.credential is None
    assert opened.device_time is None
    assert opened.received_at == RECEIVED
    assert opened.replayed is False
    assert opened.dedupe_key.startswith("mapping:panel:door.opened:")
    assert panel.decode(inbound(topic, b"OPEN")) == []
    assert decode_one(panel, topic, b"forced").kind is EventKind.DOOR_FORCED
    assert decode_one(panel, topic, b"CLOSED").kind is EventKind.DOOR_CLOSED


def test_docstring_example_json_access_rule():
    """The documented access rule: kind from a value map, fields by dotted paths, a masked
    credential, epoch-ms time and the event id as dedupe key."""
    panel = docstring_controllers()["panel"]
    event = decode_one(panel, "site/panel/p1/access", ACCESS)
    assert event.kind is EventKind.ACCESS_GRANTED
    assert event.device == "p1"
    assert event.door_ref == "front"
    assert event.credential == "****5537"
    assert event.holder == "Ann"
    assert event.reason == "granted"
    assert event.device_time == datetime(2025, 12, 31, 13, 50, 0, 123000, tzinfo=UTC)
    assert event.dedupe_key == "mapping:panel:p1:812"
    assert (
        decode_one(panel, "site/panel/p1/access", ACCESS | {"result": "duress"}).kind
        is EventKind.ACCESS_DURESS
    )


def test_docstring_example_single_rule_form():
    """The single-rule form: keys on the controller itself, topic levels by index."""
    reed = docstring_controllers()["gym-reed"]
    event = decode_one(reed, "home/gym/door", {"state": "ON"})
    assert (event.kind, event.device, event.door_ref) == (EventKind.DOOR_OPENED, "gym", "gym")
    assert decode_one(reed, "home/gym/door", {"state": "off"}).kind is EventKind.DOOR_CLOSED


def test_unmapped_values_are_unknown_or_ignored():
    """A value the map does not list is an unknown event naming the value, or nothing with
    unmapped: ignore; a fixed kind is the fallback when given."""
    codec = make_codec("mapping", kinds={"state": {"OPEN": "door.opened"}})
    event = decode_one(codec, "t", {"state": "AJAR"})
    assert (event.kind, event.reason) == (EventKind.UNKNOWN, "unmapped value AJAR")
    quiet = make_codec("mapping", kinds={"state": {"OPEN": "door.opened"}}, unmapped="ignore")
    assert quiet.decode(inbound("t", {"state": "AJAR"})) == []
    fallback = make_codec("mapping", kinds={"state": {"OPEN": "door.opened"}}, kind="input.active")
    assert decode_one(fallback, "t", {"state": "AJAR"}).kind is EventKind.INPUT_ACTIVE


def test_fixed_kind_list_indexes_and_several_value_maps():
    """A fixed kind per topic; paths with list indexes (negative from the end); the first
    value map whose field is present decides."""
    codec = make_codec(
        "mapping",
        kinds={
            "alarm.type": {"forced": "door.forced"},
            "events[-1].state": {"1": "door.opened", "0": "door.closed"},
        },
        door="events[0].door",
        holder="events[-1].who",
        changes_only=False,
    )
    payload = {"events": [{"door": "d1"}, {"state": 1, "who": "Bo"}]}
    event = decode_one(codec, "t", payload)
    assert (event.kind, event.door_ref, event.holder) == (EventKind.DOOR_OPENED, "d1", "Bo")
    forced = decode_one(codec, "t", payload | {"alarm": {"type": "forced"}})
    assert forced.kind is EventKind.DOOR_FORCED
    fixed = make_codec("mapping", kind="exit.request", door="$topic[-2]")
    rex = decode_one(fixed, "site/rex/back/pressed", b"")
    assert (rex.kind, rex.door_ref) == (EventKind.EXIT_REQUEST, "back")


def test_plain_payloads_and_json_scalars_read_through_payload():
    """$payload reads plain text (ON) and JSON scalars (1, "OPEN") alike."""
    codec = make_codec(
        "mapping",
        kinds={"$payload": {"ON": "input.active", "OFF": "input.inactive", "1": "input.active"}},
        changes_only=False,
    )
    assert decode_one(codec, "t", b"ON").kind is EventKind.INPUT_ACTIVE
    assert decode_one(codec, "t", b" off\n").kind is EventKind.INPUT_INACTIVE
    assert decode_one(codec, "t", b"1").kind is EventKind.INPUT_ACTIVE
    assert decode_one(codec, "t", b'"ON"').kind is EventKind.INPUT_ACTIVE


@pytest.mark.parametrize(
    ("options", "value", "expected"),
    [
        (
            {"time_format": "iso"},
            "2026-03-02T08:30:00-06:00",
            datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        ),
        ({"time_format": "iso"}, "2026-03-02T08:30:00", None),
        (
            {"time_format": "iso", "time_zone": "America/Chicago"},
            "2026-03-02T08:30:00",
            datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        ),
        ({"time_format": "iso"}, "not a time", None),
        ({"time_format": "epoch_s"}, 1772461800, datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),
        ({"time_format": "epoch_ms"}, "1772461800000", datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),
        ({"time_format": "epoch_s"}, 0, None),
        ({"time_format": "epoch_s"}, "soon", None),
    ],
)
def test_device_time_is_utc_only_when_trustworthy(options, value, expected):
    """ISO times need an offset or a configured zone; epoch times are UTC; unreadable or
    zero times leave device_time null without failing the event."""
    codec = make_codec("mapping", kind="access.granted", time="ts", **options)
    assert decode_one(codec, "t", {"ts": value}).device_time == expected


def test_dedupe_by_time_without_an_id_and_run_unique_without_either():
    """With a time field a redelivery keeps its key; with neither id nor time each message
    gets a key of its own (a real second swipe is not merged)."""
    timed = make_codec("mapping", kind="access.granted", time="ts", time_format="epoch_s")
    assert (
        decode_one(timed, "t", {"ts": 1772461800}).dedupe_key
        == decode_one(timed, "t", {"ts": 1772461800}).dedupe_key
    )
    untimed = make_codec("mapping", kind="access.granted")
    assert decode_one(untimed, "t", {}).dedupe_key != decode_one(untimed, "t", {}).dedupe_key


def test_direction_credential_masking_and_retained_replay():
    """direction accepts in/out, entry/exit, 1/2; numbers become masked credentials; a
    retained message is replayed."""
    codec = make_codec("mapping", kind="access.granted", direction="dir", credential="card")
    event = decode_one(codec, "t", {"dir": "exit", "card": 12345678}, retained=True)
    assert (event.direction, event.credential, event.replayed) == (Direction.OUT, "****5678", True)
    assert decode_one(codec, "t", {"dir": 1}).direction is Direction.IN
    assert decode_one(codec, "t", {"dir": "sideways"}).direction is None


def test_topics_no_rule_matches_give_nothing_and_are_logged_once():
    """A topic outside every rule's match is no event, logged once per topic."""
    codec = make_codec(
        "mapping",
        match="site/{door}/state",
        door="$topic.door",
        kinds={"$payload": {"OPEN": "door.opened"}},
    )
    with captured_logs() as logs:
        assert codec.decode(inbound("site/front/battery", b"80")) == []
        assert codec.decode(inbound("site/front/battery", b"81")) == []
    assert [entry["event"] for entry in logs] == ["no mapping rule matches topic"]
    assert decode_one(codec, "site/front/state", b"OPEN").door_ref == "front"


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"badge": "x"}, "wrong_type"),
        ({"badge": {"holder": {"first": "Ann"}}}, "wrong_type"),
        ({"badge": [1]}, "wrong_type"),
        ({"state": {"v": 1}}, "wrong_type"),
        ({"ts": {"t": 1}}, "wrong_type"),
        (b"\xff\xfe not text", "malformed"),
        (b"[" * 2000 + b"]" * 2000, "too_deep"),
    ],
)
def test_type_mismatches_on_configured_paths_are_decode_errors(payload, kind):
    """A configured path through the wrong type, or a value that is an object where text is
    expected, is wrong_type; unreadable payloads malformed; deep nesting too_deep."""
    codec = make_codec(
        "mapping",
        kinds={"state": {"OPEN": "door.opened"}, "$payload": {"X": "unknown"}},
        holder="badge.holder",
        time="ts",
    )
    with pytest.raises(DecodeError) as caught:
        codec.decode(inbound("t", payload))
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs kinds"),
        ({"kinds": {"a..b": {"x": "door.opened"}}}, "empty name before '.'"),
        ({"kinds": {"$body": {"x": "door.opened"}}}, "use $payload"),
        ({"kinds": {"state": {"x": "door.opne"}}}, "Input should be"),
        ({"kind": "door.opened", "door": "$topic.door"}, "needs {door} in match"),
        ({"kind": "door.opened", "match": "a/#/b"}, "'#' must be the last level"),
        ({"kind": "door.opened", "match": "a/{x}/{x}"}, "appears twice"),
        ({"kind": "door.opened", "match": "a/b+/c"}, "mixes a wildcard"),
        ({"kind": "door.opened", "rules": [{"kind": "door.closed"}]}, "belong inside rules"),
        ({"rules": [{"door": "d"}]}, "a rule needs kinds"),
        ({"kind": "door.opened", "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_refused_with_the_reason(options, message):
    """The options model refuses what cannot work, saying why."""
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(ControllerConfig).validate_python(
            {"id": "m", "codec": "mapping", "topics": ["#"], **options}
        )
    assert message in str(caught.value)


def test_config_error_names_the_controller_key(tmp_path):
    """In a config file, a mapping mistake is reported with its key path."""
    config = write_site(
        tmp_path,
        """
        controllers:
          - id: panel
            codec: mapping
            topics: ["panel/#"]
            kinds: {"reader..door": {"OPEN": door.opened}}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert re.search(r"controllers\[0\]", str(caught.value))
    assert "empty name before '.'" in str(caught.value)


def test_decode_command_needs_a_config_and_then_maps_the_door(tmp_path, monkeypatch, capsysbinary):
    """Without -c, `doorwatch decode --format mapping` says it needs a config (exit 1, one
    line); with one, it decodes and maps the door."""
    code, out, err = run_cli_process(["decode", "--format", "mapping", "--topic", "t"], b"OPEN")
    assert (code, out) == (1, "")
    assert (
        err.strip()
        == "decode: format mapping needs options: pass -c CONFIG with a controller using codec mapping"
    )
    config = write_site(
        tmp_path,
        """
        controllers:
          - id: reed
            codec: mapping
            topics: ["reed/+"]
            doors: {gym-door: gym}
            door: $topic[1]
            kinds: {$payload: {OPEN: door.opened, SHUT: door.closed}}
        """,
    )
    code, out, err = run_cli(
        monkeypatch,
        capsysbinary,
        ["decode", "--format", "mapping", "--topic", "reed/gym-door", "-c", str(config)],
        b"SHUT",
    )
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["kind"], printed["door"], printed["source"]) == ("door.closed", "gym", "reed")
