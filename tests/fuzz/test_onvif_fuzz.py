"""Fuzzing the ONVIF path: XML parser (defusedxml, bounds), notification reader, normaliser.

Whatever a camera (or something pretending to be one) answers, ``decode_envelope`` and the
live path (``parse_notifications`` then ``Normaliser.normalise`` then ``map_inputs``) return
events or raise :class:`~doorwatch.errors.DecodeError`; nothing else escapes, no input takes
long, and the biggest accepted document stays within a fixed memory budget.

Three generators: arbitrary bytes; well-formed envelopes built from the topic table with
arbitrary items, values, times and property operations; and byte-level mutations of a valid
envelope (truncation, insertion, flips), which reach the parser's error paths.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doorwatch.adapters.onvif.messages import MAX_XML_BYTES, parse_notifications
from doorwatch.adapters.onvif.normalise import (
    IGNORED,
    TOPICS,
    Normaliser,
    decode_envelope,
    map_inputs,
)
from doorwatch.errors import DecodeError
from doorwatch.events import Event

NOW = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)
KINDS = {"malformed", "too_deep", "too_large", "wrong_type", "unsupported"}
# Derandomized: the same examples every run, so CI time is stable and failures reproduce.
# The deadline is per example; inputs here are small, so 2 s only trips on a real hang
# (generous for a 2-core machine shared with other test runs).
FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ITEM_NAMES = [
    "State",
    "LogicalState",
    "IsMotion",
    "IsTamper",
    "IsInside",
    "IsPeople",
    "state",
    "port",
    "InputToken",
    "AlarmInToken",
    "DoorToken",
    "AccessPointToken",
    "CredentialToken",
    "CredentialHolderName",
    "IdentifierValue",
    "Card",
    "Reason",
    "VideoSourceConfigurationToken",
    "Rule",
]
VALUES = [
    "true",
    "false",
    "1",
    "0",
    "active",
    "Inactive",
    "ON",
    "off",
    "Open",
    "closed",
    "DoorForcedOpen",
    "DoorOpenTooLong",
    "Normal",
    "Locked",
    "Unknown",
    "4111111111111111",
    "",
    " ",
]
TIMES = [
    "2026-03-02T10:00:00Z",
    "2026-03-02T10:00:00.123+05:30",
    "2010-01-01-00:00:00",
    "2023-05-15T-07:10:32Z",
    "2026-03-02T10:61:99Z",
    "0000-00-00T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2000-01-01T00:00:00",
    "not a time",
    "",
]
PREFIXES = ["tns1:", "tns1:tns1:", "tnsaxis:", "", "x:"]
SUFFIXES = ["", "//.", "/.", "/"]

text = st.text(max_size=30)
names = st.sampled_from(ITEM_NAMES) | text
values = st.sampled_from(VALUES) | text
items = st.lists(st.tuples(names, values), max_size=5)


def known_topic(pattern: str, prefix: str, suffix: str, filler: str) -> str:
    """A topic from a table pattern, with ``*``/``**`` filled and camera-style decorations."""
    parts = [filler or "X" if p in {"*", "**"} else p for p in pattern.split("/")]
    return prefix + ("/" + prefix).join(parts) + suffix


topics = st.builds(
    known_topic,
    st.sampled_from([r.pattern for r in (*TOPICS, *IGNORED)]),
    st.sampled_from(PREFIXES),
    st.sampled_from(SUFFIXES),
    st.text(alphabet="abcXYZ_", max_size=6),
) | text.map(escape)


def simple_items(pairs: list[tuple[str, str]], tag: str) -> str:
    return "".join(f"<{tag} Name={quoteattr(n)} Value={quoteattr(v)}/>" for n, v in pairs)


@st.composite
def notification(draw: st.DrawFn) -> str:
    """One NotificationMessage: a topic, arbitrary Source/Key/Data, time and operation."""
    operation = draw(st.sampled_from(["Initialized", "Changed", "Deleted", "", None]) | text)
    utc = draw(st.sampled_from(TIMES) | text)
    attrs = f" UtcTime={quoteattr(utc)}" if draw(st.booleans()) else ""
    if operation is not None:
        attrs += f" PropertyOperation={quoteattr(operation)}"
    tag = draw(st.sampled_from(["tt:SimpleItem", "tt:SimpleItemDescription", "tt:Other"]))
    key = f"<tt:Key>{simple_items(draw(items), tag)}</tt:Key>" if draw(st.booleans()) else ""
    inner = (
        f"<tt:Message{attrs}><tt:Source>{simple_items(draw(items), tag)}</tt:Source>{key}"
        f"<tt:Data>{simple_items(draw(items), tag)}</tt:Data></tt:Message>"
    )
    # Some firmwares drop the wsnt:Message wrapper level; some omit the topic.
    wrapped = inner if draw(st.booleans()) else f"<wsnt:Message>{inner}</wsnt:Message>"
    topic = f"<wsnt:Topic Dialect='x'>{draw(topics)}</wsnt:Topic>" if draw(st.booleans()) else ""
    return f"<wsnt:NotificationMessage>{topic}{wrapped}</wsnt:NotificationMessage>"


NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:x="urn:x" '
    'xmlns:tns1="http://www.onvif.org/ver10/topics" '
    'xmlns:tnsaxis="http://www.axis.com/2009/event/topics"'
)


@st.composite
def document(draw: st.DrawFn) -> bytes:
    """An envelope, a bare PullMessagesResponse or Notify, or a bare NotificationMessage."""
    messages = "".join(draw(st.lists(notification(), max_size=6)))
    times = "".join(
        f"<tev:{name}>{escape(draw(st.sampled_from(TIMES) | text))}</tev:{name}>"
        for name in ("CurrentTime", "TerminationTime")
        if draw(st.booleans())
    )
    shape = draw(st.sampled_from(["envelope", "pull", "notify", "bare"]))
    if shape == "bare":
        body = draw(notification()).replace("<wsnt:NotificationMessage>", "", 1)
        return f"<wsnt:NotificationMessage {NS}>{body}".encode()
    element = "wsnt:Notify" if shape == "notify" else "tev:PullMessagesResponse"
    inner = f"<{element}>{times}{messages}</{element}>"
    if shape == "envelope":
        return f"<s:Envelope {NS}><s:Body>{inner}</s:Body></s:Envelope>".encode()
    return inner.replace(f"<{element}>", f"<{element} {NS}>", 1).encode()


def decode_safely(payload: bytes, *, trust_clock: bool = True) -> list[Event]:
    """Both ways in (the CLI's and the live camera loop's); DecodeError is the only refusal."""
    try:
        events = decode_envelope(payload, source="cam-1", received_at=NOW)
        batch = parse_notifications(payload)
    except DecodeError as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert refused.kind in KINDS, refused.kind
        assert "\n" not in refused.reason
        assert len(refused.reason) < 400
        return []
    live = Normaliser("cam-1").normalise(
        batch.notifications,
        received_at=NOW,
        trust_device_time=trust_clock,
        receipt_salt=None if trust_clock else "r1",
    )
    live = map_inputs(live, {"AlarmIn_1": "gym", "1": "east"}, "active")
    assert len(events) <= len(batch.notifications)
    for event in [*events, *live]:
        assert isinstance(event, Event)
        assert event.camera == "cam-1"
        assert event.received_at == NOW
        # A camera's clock never puts an event into the far past or future.
        assert event.device_time is None or abs(event.device_time - NOW) <= timedelta(days=1)
        assert event.device_time is None or event.device_time.year > 2000
        # Card numbers never pass through unmasked.
        assert event.credential is None or "4111111111111111" not in event.credential
        assert event.dedupe_key
    return events


@FUZZ
@given(payload=st.binary(max_size=2000))
def test_arbitrary_bytes(payload):
    """Arbitrary bytes are refused with a DecodeError of a known kind (or, rarely, decoded)."""
    decode_safely(payload)


@FUZZ
@given(payload=document(), trust_clock=st.booleans())
def test_generated_envelopes(payload, trust_clock):
    """Well-formed documents from the topic table with arbitrary items, values, times and
    property operations decode into events (or a DecodeError), never anything else."""
    decode_safely(payload, trust_clock=trust_clock)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid envelope damaged at a few random places."""
    data = bytearray(draw(document()))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["cut", "insert", "flip", "delete"]))
        if action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(
                st.sampled_from([b"<", b">", b"&", b"&lol;", b"<!DOCTYPE a>", b"\x00", b"]]>"])
                | st.binary(max_size=8)
            )
        elif action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        else:
            del data[at : at + draw(st.integers(1, 20))]
    return bytes(data)


@FUZZ
@given(payload=mutated())
def test_mutated_envelopes(payload):
    """Truncated, spliced and bit-flipped envelopes reach the parser's error paths cleanly."""
    decode_safely(payload)


def measure(payload: bytes) -> tuple[float, float, list[Event]]:
    """(seconds, peak MiB allocated, events) of one decode through both paths."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        events = decode_safely(payload)
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, peak / 2**20, events


MESSAGE = (
    "<wsnt:NotificationMessage><wsnt:Topic>tns1:Device/Trigger/DigitalInput</wsnt:Topic>"
    "<wsnt:Message><tt:Message UtcTime='2026-03-02T10:00:00Z' PropertyOperation='Changed'>"
    "<tt:Source><tt:SimpleItem Name='InputToken' Value='AlarmIn_1'/></tt:Source>"
    "<tt:Data><tt:SimpleItem Name='LogicalState' Value='true'/></tt:Data>"
    "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
)


def envelope(body: str) -> bytes:
    return (
        f"<s:Envelope {NS}><s:Body><tev:PullMessagesResponse>{body}"
        "</tev:PullMessagesResponse></s:Body></s:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("name", "payload", "max_s", "max_mib"),
    [
        # Ten times the biggest real pull (100 messages): 1 MiB of messages.
        ("many-messages", envelope(MESSAGE * (2**20 // len(MESSAGE))), 15.0, 100.0),
        # One huge attribute value and one huge topic text, under the byte cap.
        (
            "huge-value",
            envelope(MESSAGE.replace("AlarmIn_1", "A" * (MAX_XML_BYTES - 2000))),
            10.0,
            120.0,
        ),
        ("huge-topic", envelope(MESSAGE.replace("DigitalInput", "x/" * 1_000_000)), 10.0, 120.0),
        # Refused before any tree is built: just over the byte cap, too deep, too many nodes.
        ("over-the-cap", envelope(MESSAGE + " " * MAX_XML_BYTES), 2.0, 20.0),
        ("deep", b"<a>" * 50_000 + b"</a>" * 50_000, 5.0, 60.0),
        ("wide", b"<a>" + b"<b/>" * 400_000 + b"</a>", 10.0, 200.0),
    ],
)
def test_big_documents_are_time_and_memory_bounded(name, payload, max_s, max_mib):
    """The worst documents within (or just over) the limits decode or are refused within a
    time and memory budget, measured with tracemalloc (which itself slows Python ~2x)."""
    elapsed, peak, events = measure(payload)
    print(f"{name}: {len(payload)} B, {elapsed:.2f} s, peak {peak:.0f} MiB, {len(events)} events")
    assert elapsed < max_s, f"{name} took {elapsed:.1f} s"
    assert peak < max_mib, f"{name} peaked at {peak:.0f} MiB"
    if name == "many-messages":
        assert len(events) > 2_500
