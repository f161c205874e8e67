"""What the controller codecs share: typed field access, text caps, flags and state memory.

Every helper here raises only :class:`DecodeError`, so a codec built from them keeps the
promise of :meth:`Codec.decode`: a bad payload becomes one dead letter, never a traceback.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from doorwatch.adapters.mqtt.codecs.base import InboundMessage
from doorwatch.errors import DecodeError
from doorwatch.events import Direction, Event, EventKind

# Device names, hostnames and door references are identifiers: a serial, a friendly name, a
# token. Real ones are far shorter; the cap keeps a misbehaving publisher from filling the
# journal and the console with kilobyte-long names.
MAX_ID_CHARS = 128
# Holder names, reason texts and similar free text shown to a guard.
MAX_TEXT_CHARS = 256
# Plain (non-JSON) payloads are single words such as ON, open or online.
MAX_PLAIN_CHARS = 64


def cap(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cut ``text`` to at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit]


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),  # Before int: a bool is an int in Python, not in JSON.
    ((int, float), "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def type_name(value: object) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    for types, name in _JSON_TYPES:
        if isinstance(value, types):
            return name
    return type(value).__name__


def printable(text: str, limit: int = 80) -> str:
    """Text from a payload made safe for a one-line message: capped, no control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in cap(text, limit))


def wrong_type(where: str, expected: str, value: object) -> DecodeError:
    """The error for a field holding the wrong JSON type (the value itself is not echoed)."""
    return DecodeError(
        f"field {printable(where)} must be {expected}, got {type_name(value)}", kind="wrong_type"
    )


def missing(where: str) -> DecodeError:
    """The error for a required field that is absent."""
    return DecodeError(f"field {printable(where)} is missing", kind="malformed")


def get_str(
    data: Mapping[str, Any],
    key: str,
    *,
    where: str = "",
    required: bool = False,
    limit: int = MAX_TEXT_CHARS,
) -> str | None:
    """A string field, capped; None when absent or null."""
    value = data.get(key)
    if value is None:
        if required:
            raise missing(where + key)
        return None
    if not isinstance(value, str):
        raise wrong_type(where + key, "a string", value)
    return cap(value, limit)


def get_int(
    data: Mapping[str, Any], key: str, *, where: str = "", required: bool = False
) -> int | None:
    """An integer field (booleans and fractions refused); None when absent or null."""
    value = data.get(key)
    if value is None:
        if required:
            raise missing(where + key)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(where + key, "an integer", value)
    return value


def get_bool(
    data: Mapping[str, Any], key: str, *, where: str = "", required: bool = False
) -> bool | None:
    """A JSON boolean field; None when absent or null."""
    value = data.get(key)
    if value is None:
        if required:
            raise missing(where + key)
        return None
    if not isinstance(value, bool):
        raise wrong_type(where + key, "a boolean", value)
    return value


def get_object(
    data: Mapping[str, Any], key: str, *, where: str = "", required: bool = False
) -> dict[str, Any] | None:
    """A JSON object field; None when absent or null."""
    value = data.get(key)
    if value is None:
        if required:
            raise missing(where + key)
        return None
    if not isinstance(value, dict):
        raise wrong_type(where + key, "an object", value)
    return value


def scalar_text(value: object, where: str) -> str:
    """A JSON scalar as text (``true``, ``1``, ``OPEN``); objects and arrays are refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    if isinstance(value, str):
        return cap(value)
    raise wrong_type(where, "a string, number or boolean", value)


# The spellings of "on" and "off" that door and sensor publishers use (research §6.5): HA's
# ON/OFF, Shelly's "true"/"false", ESPEasy's and Axis's 1/0.
_TRUE = frozenset({"on", "true", "1", "yes", "active"})
_FALSE = frozenset({"off", "false", "0", "no", "inactive"})


def parse_flag(text: str) -> bool | None:
    """Read a textual on/off value; None when it is neither."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def plain_text(payload: bytes) -> str:
    """A plain-text payload such as ``ON`` or ``online`` (a JSON-quoted string is unquoted)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise DecodeError("payload is not UTF-8 text", kind="malformed") from None
    if len(text) > MAX_PLAIN_CHARS:
        raise DecodeError(
            f"plain payload longer than {MAX_PLAIN_CHARS} characters", kind="malformed"
        )
    if len(text) >= 2 and text[0] == text[-1] == '"':  # noqa: PLR2004 - the two quotes.
        try:
            unquoted = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise DecodeError("payload is a broken JSON string", kind="malformed") from None
        if isinstance(unquoted, str):
            return unquoted.strip()
    return text


def digest(*parts: object) -> str:
    """A short stable hash of some parts, for dedupe keys that must not show what they hash."""
    joined = "\x1f".join(str(part) for part in parts)
    return hashlib.sha256(joined.encode("utf-8", errors="replace")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Change:
    """A state that differs from the one remembered for its subject."""

    # True when nothing was remembered: the first value seen since this codec started.
    first: bool
    previous: str | None


# Subjects remembered per codec. A site has tens to hundreds of doors and sensors; the cap only
# stops a publisher spraying made-up device names from growing memory without bound.
_MAX_SUBJECTS = 10_000


class StateMemory:
    """Remembers the last state of each subject, so that only changes become events.

    It also hands out state versions for dedupe keys of sources that carry no event id:
    ``<epoch>.<n>``, where the epoch is this codec instance's start time. A redelivered message
    repeats the remembered state and yields no event at all; a real second change gets a new
    version; and a restarted daemon never reuses a key already in the journal.
    """

    def __init__(self) -> None:
        self._states: dict[tuple[str, ...], str] = {}
        self._counter = 0
        # Milliseconds since 1970 in base 36: short, and unique per start of the daemon.
        self.epoch = _base36(time.time_ns() // 1_000_000)

    def change(self, subject: tuple[str, ...], state: str) -> Change | None:
        """Record ``state`` for ``subject``; return the change, or None when it is a repeat."""
        previous = self._states.get(subject)
        if previous == state:
            return None
        if previous is None and len(self._states) >= _MAX_SUBJECTS:
            del self._states[next(iter(self._states))]
        self._states[subject] = state
        return Change(first=previous is None, previous=previous)

    def get(self, subject: tuple[str, ...]) -> str | None:
        """The remembered state of a subject."""
        return self._states.get(subject)

    def known(self, subject: tuple[str, ...]) -> bool:
        """Whether a state is remembered for the subject."""
        return subject in self._states

    def version(self) -> str:
        """A state version unique to this codec instance's lifetime."""
        self._counter += 1
        return f"{self.epoch}.{self._counter}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def build_event(
    kind: EventKind,
    message: InboundMessage,
    *,
    source: str,
    dedupe_key: str,
    device: str | None = None,
    door_ref: str | None = None,
    credential: str | None = None,
    holder: str | None = None,
    direction: Direction | None = None,
    reason: str | None = None,
    device_time: datetime | None = None,
    replayed: bool = False,
) -> Event:
    """Build a canonical event from a message; retained messages are always replayed.

    ``door`` starts as the source's own reference; the controller's door resolver maps it.
    """
    return Event(
        kind=kind,
        source=source,
        device=device,
        door=door_ref,
        door_ref=door_ref,
        credential=credential,
        holder=holder,
        direction=direction,
        reason=reason,
        device_time=device_time,
        received_at=message.received_at,
        replayed=message.retained or replayed,
        dedupe_key=dedupe_key,
    )
