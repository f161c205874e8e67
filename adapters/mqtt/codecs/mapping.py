"""The ``mapping`` codec: any JSON or plain-text source, mapped to events by configuration.

For sources with no codec of their own (a legacy alarm panel, a DIY reed switch, a Node-RED
flow). Each *rule* says which topics it handles, where the fields are, and which values mean
which event kind. A controller has one rule written at its top level, or a ``rules:`` list
(the first rule whose ``match`` fits the topic decides)::

    controllers:
      - id: panel
        codec: mapping
        topics: ["site/panel/+/door/+/state", "site/panel/+/access"]
        doors: {front: main-entrance, "panel-2:back": kitchen-dock}
        rules:
          # Plain-text payloads OPEN / CLOSED / FORCED on a topic naming device and door.
          - match: "site/panel/{device}/door/{door}/state"   # {name} captures one level;
            device: $topic.device                            # + and # match without capturing
            door: $topic.door
            kinds:
              $payload: {OPEN: door.opened, CLOSED: door.closed, FORCED: door.forced}
          # JSON: {"seq": 812, "ts": 1767189000123, "result": "granted",
          #        "reader": {"door": "front"}, "badge": {"number": "8165537", "holder": "Ann"}}
          - match: "site/panel/{device}/access"
            device: $topic.device
            door: reader.door
            kinds:
              result: {granted: access.granted, denied: access.denied, duress: access.duress}
            credential: badge.number      # masked on arrival
            holder: badge.holder
            reason: result
            time: ts
            time_format: epoch_ms
            event_id: seq                 # makes redeliveries recognisable

      # The single-rule form: the rule's keys sit on the controller itself.
      - id: gym-reed
        codec: mapping
        topics: ["home/gym/door"]
        device: $topic[1]
        door: $topic[1]
        kinds: {state: {"ON": door.opened, "OFF": door.closed}}

Where a value comes from (a *source*):

* ``a.b[0].c``: a field of the JSON payload, dotted, with list indexes (``[-1]`` is the last);
* ``$payload``: the whole payload as text (plain payloads such as ``ON``, or a JSON scalar);
* ``$topic``, ``$topic.<name>`` (a level captured by ``{name}`` in ``match``), ``$topic[i]``
  (the i-th level, from 0; negative counts from the end).

Keys of a rule:

* ``match``: topic pattern; without it the rule takes every topic of the controller.
* ``kinds``: source -> {value: kind}. Values compare as text (``true``, ``1``, ``OPEN``), exactly
  first, then ignoring case. The first source whose value is listed decides the kind.
* ``kind``: a fixed kind, for topics that mean one thing, or as the fallback of ``kinds``.
* ``unmapped``: what a value listed nowhere gives: ``unknown`` (default, an ``unknown`` event
  with the value as reason, so gaps in the map show on the console) or ``ignore``.
* ``device``, ``door``, ``credential``, ``holder``, ``reason``, ``direction`` (``in``/``out``,
  ``entry``/``exit``, ``1``/``2``): sources of those fields. ``door`` is the source's own door
  reference, mapped through the controller's ``doors:`` table.
* ``time`` and ``time_format`` (``iso``, ``epoch_s``, ``epoch_ms``): the device's time. An ISO
  time without an offset is only trusted with ``time_zone``; otherwise ``device_time`` is null.
* ``event_id``: a field that identifies the occurrence (a sequence number), for dedupe.
* ``changes_only`` (default true): for state kinds (opened/closed, locked/unlocked, input
  active/inactive, online/offline), a repeat of the last state gives no event, so a source that
  re-reports its state does not look like a door opening again and again.

Dedupe keys: ``mapping:<source>:<device>:<event_id>`` when ``event_id`` is set; else a hash of
topic, kind, device, door, time and masked credential when ``time`` is set; else a key unique
to this run (a QoS 1 redelivery of such a message can then count twice: map an id or a time).
Retained messages are replayed state, as for every codec.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

import orjson
import structlog
from pydantic import AfterValidator, Field, model_validator

from doorwatch.adapters.mqtt.codecs._support import (
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    StateMemory,
    build_event,
    cap,
    digest,
    scalar_text,
    type_name,
    wrong_type,
)
from doorwatch.adapters.mqtt.codecs.base import (
    Codec,
    ControllerOptions,
    InboundMessage,
    register_codec,
)
from doorwatch.config.base import Model, TimeZoneName
from doorwatch.errors import DecodeError
from doorwatch.events import Direction, Event, EventKind, mask_credential

log = structlog.get_logger(__name__)

# ----- sources: where a value is read from -----

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOPIC_NAME = re.compile(rf"^\$topic\.({_NAME})$")
_TOPIC_INDEX = re.compile(r"^\$topic\[(-?\d{1,3})\]$")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(-?\d{1,6})\]")
# A path deeper than this is a typo or an attack on the config, not a real payload layout.
_MAX_PATH = 32

Path = tuple[str | int, ...]


def parse_path(text: str) -> Path:
    """Parse ``a.b[0].c`` into ``("a", "b", 0, "c")``; raise ValueError when malformed."""
    parts: list[str | int] = []
    position = 0
    expect_key = True
    while position < len(text):
        if text[position] == ".":
            if expect_key:
                raise ValueError(f"{text!r}: empty name before '.'")
            position += 1
            expect_key = True
            continue
        match = _SEGMENT.match(text, position)
        if match is None:
            raise ValueError(f"{text!r} is not a path like a.b[0].c")
        key, index = match.groups()
        if key is not None:
            if not expect_key:
                raise ValueError(f"{text!r}: a name must follow '.'")
            parts.append(key)
        else:
            parts.append(int(index))
        expect_key = False
        position = match.end()
    if not parts or expect_key:
        raise ValueError(f"{text!r} is not a path like a.b[0].c")
    if len(parts) > _MAX_PATH:
        raise ValueError(f"{text!r} is deeper than {_MAX_PATH} levels")
    return tuple(parts)


def _check_source(text: str) -> str:
    if text in {"$payload", "$topic"} or _TOPIC_NAME.match(text) or _TOPIC_INDEX.match(text):
        return text
    if text.startswith("$"):
        raise ValueError(
            f"{text!r}: use $payload, $topic, $topic.<name> or $topic[<index>] (or a field path)"
        )
    parse_path(text)
    return text


Source = Annotated[str, AfterValidator(_check_source)]


# ----- topic patterns -----


def parse_pattern(pattern: str) -> list[str]:
    """Check a ``match`` pattern; return its levels (``{name}`` captures, ``+``, ``#``)."""
    levels = pattern.split("/")
    names: set[str] = set()
    for position, level in enumerate(levels):
        if level == "#":
            if position != len(levels) - 1:
                raise ValueError(f"{pattern!r}: '#' must be the last level")
        elif level.startswith("{") and level.endswith("}"):
            name = level[1:-1]
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"{pattern!r}: {level} must name a level like {{door}}")
            if name in names:
                raise ValueError(f"{pattern!r}: {{{name}}} appears twice")
            names.add(name)
        elif level != "+" and any(ch in level for ch in "+#{}"):
            raise ValueError(f"{pattern!r}: '{level}' mixes a wildcard with text")
    return levels


def match_topic(levels: list[str], topic: str) -> dict[str, str] | None:
    """Match a topic against pattern levels; return the captured levels or None."""
    parts = topic.split("/")
    captured: dict[str, str] = {}
    for position, level in enumerate(levels):
        if level == "#":
            return captured
        if position >= len(parts):
            return None
        if level.startswith("{"):
            captured[level[1:-1]] = parts[position]
        elif level not in {"+", parts[position]}:
            return None
    return captured if len(parts) == len(levels) else None


# ----- the options model -----

_TIME_FORMATS = Literal["iso", "epoch_s", "epoch_ms"]


class _RuleFields(Model):
    """The keys of one mapping rule (also allowed on the controller itself)."""

    match: str | None = Field(
        default=None,
        description="Topic pattern: {name} captures a level, + and # match without capturing.",
    )
    kind: EventKind | None = Field(
        default=None, description="Fixed kind, or the fallback when no value in kinds matches."
    )
    kinds: dict[Source, dict[str, EventKind]] = Field(
        default_factory=dict,
        description="Source -> {value: kind}; the first source whose value is listed decides.",
    )
    unmapped: Literal["unknown", "ignore"] = Field(
        default="unknown", description="What a value listed nowhere gives."
    )
    device: Source | None = Field(default=None, description="Where the device name is.")
    door: Source | None = Field(default=None, description="Where the door reference is.")
    credential: Source | None = Field(default=None, description="Card number or UID (masked).")
    holder: Source | None = Field(default=None, description="Credential holder's name.")
    reason: Source | None = Field(default=None, description="The source's reason text or code.")
    direction: Source | None = Field(default=None, description="in/out, entry/exit or 1/2.")
    time: Source | None = Field(default=None, description="The device's time.")
    time_format: _TIME_FORMATS = Field(default="iso", description="iso, epoch_s or epoch_ms.")
    time_zone: TimeZoneName | None = Field(
        default=None, description="Zone of ISO times written without an offset."
    )
    event_id: Source | None = Field(
        default=None, description="A field identifying the occurrence (sequence number)."
    )
    changes_only: bool = Field(
        default=True, description="Drop repeats of the last state for state kinds."
    )

    @model_validator(mode="after")
    def _pattern_and_captures(self) -> Self:
        names: set[str] = set()
        if self.match is not None:
            levels = parse_pattern(self.match)
            names = {level[1:-1] for level in levels if level.startswith("{")}
        for source in self._sources():
            found = _TOPIC_NAME.match(source)
            if found and found.group(1) not in names:
                raise ValueError(
                    f"{source} needs {{{found.group(1)}}} in match (match is {self.match!r})"
                )
        return self

    def _sources(self) -> list[str]:
        fields = (self.device, self.door, self.credential, self.holder, self.reason)
        more = (self.direction, self.time, self.event_id)
        return [s for s in (*fields, *more) if s is not None] + list(self.kinds)

    @property
    def defines_kind(self) -> bool:
        """Whether the rule can produce a kind at all."""
        return self.kind is not None or bool(self.kinds)


class MappingRule(_RuleFields):
    """One mapping rule of a ``rules:`` list."""

    @model_validator(mode="after")
    def _needs_a_kind(self) -> Self:
        if not self.defines_kind:
            raise ValueError("a rule needs kinds (value maps) or a fixed kind")
        return self


_RULE_KEYS = tuple(_RuleFields.model_fields)


class MappingOptions(ControllerOptions, _RuleFields):
    """A source mapped to events by configuration: one rule at the top level, or ``rules``."""

    codec: Literal["mapping"]
    rules: list[MappingRule] = Field(
        default_factory=list, description="Rules tried in order; the first that matches wins."
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if self.rules:
            given = sorted(key for key in _RULE_KEYS if key in self.model_fields_set)
            if given:
                raise ValueError(
                    f"{', '.join(given)} belong inside rules: when rules is given "
                    "(or drop rules and keep one rule at the top level)"
                )
        elif not self.defines_kind:
            raise ValueError(
                "a mapping controller needs kinds (value maps) or a fixed kind, "
                "at the top level or in rules"
            )
        return self

    def effective_rules(self) -> list[MappingRule]:
        """The rules in order (the top-level rule when ``rules`` is empty)."""
        if self.rules:
            return list(self.rules)
        return [MappingRule.model_validate({k: getattr(self, k) for k in _RULE_KEYS})]


# ----- the codec -----

# Kinds that describe a state, grouped so that a repeat within a group is recognised.
_STATE_GROUPS: dict[EventKind, str] = {
    EventKind.DOOR_OPENED: "position",
    EventKind.DOOR_CLOSED: "position",
    EventKind.DOOR_LOCKED: "lock",
    EventKind.DOOR_UNLOCKED: "lock",
    EventKind.INPUT_ACTIVE: "input",
    EventKind.INPUT_INACTIVE: "input",
    EventKind.DEVICE_ONLINE: "availability",
    EventKind.DEVICE_OFFLINE: "availability",
}
_DIRECTIONS = {
    "in": Direction.IN,
    "entry": Direction.IN,
    "1": Direction.IN,
    "out": Direction.OUT,
    "exit": Direction.OUT,
    "2": Direction.OUT,
}
# Epoch seconds beyond 9999-12-31 cannot be a clock.
_MAX_EPOCH_S = 253_402_300_799
_MAX_LOGGED_TOPICS = 1_000
_NOT_JSON = object()


class _CompiledRule:
    """A rule with its pattern and paths parsed once."""

    def __init__(self, rule: MappingRule) -> None:
        self.rule = rule
        self.levels = parse_pattern(rule.match) if rule.match is not None else None
        self.kinds = [
            (source, dict(values), {k.lower(): v for k, v in values.items()})
            for source, values in rule.kinds.items()
        ]
        self.zone = ZoneInfo(rule.time_zone) if rule.time_zone else None


class _Message:
    """One message as a mapping rule reads it: topic levels, captures, JSON or text."""

    def __init__(self, inbound: InboundMessage, captured: dict[str, str]) -> None:
        self.topic = inbound.topic
        self.levels = inbound.topic.split("/")
        self.captured = captured
        self._payload = inbound.payload
        self._json: Any = None
        self._parsed = False

    def json(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._json = orjson.loads(self._payload)
            except orjson.JSONDecodeError as exc:
                text = str(exc).lower()
                if "recursion" in text or "depth" in text:
                    raise DecodeError("JSON nested too deeply", kind="too_deep") from None
                self._json = _NOT_JSON
            except RecursionError:
                raise DecodeError("JSON nested too deeply", kind="too_deep") from None
        return self._json

    def text(self) -> str:
        data = self.json()
        if data is _NOT_JSON:
            try:
                return cap(self._payload.decode("utf-8").strip(), MAX_TEXT_CHARS)
            except UnicodeDecodeError:
                raise DecodeError(
                    "payload is neither JSON nor UTF-8 text", kind="malformed"
                ) from None
        return scalar_text(data, "$payload")

    def get(self, source: str) -> object:
        """The value at a source, or None when the payload or topic has none there."""
        if source == "$payload":
            return self.text()
        if source == "$topic":
            return self.topic
        if found := _TOPIC_NAME.match(source):
            return self.captured.get(found.group(1))
        if found := _TOPIC_INDEX.match(source):
            index = int(found.group(1))
            return self.levels[index] if -len(self.levels) <= index < len(self.levels) else None
        data = self.json()
        if data is _NOT_JSON:
            return None
        return _walk(data, _path(source), source)


@functools.lru_cache(maxsize=512)
def _path(source: str) -> Path:
    return parse_path(source)


def _walk(data: Any, path: Path, source: str) -> object:
    value = data
    for part in path:
        if value is None:
            return None
        if isinstance(part, int):
            if not isinstance(value, list):
                raise wrong_type(source, "an array where an index is used", value)
            if not -len(value) <= part < len(value):
                return None
            value = value[part]
        else:
            if not isinstance(value, dict):
                raise wrong_type(source, "an object where a name is used", value)
            value = value.get(part)
    return value


@register_codec("mapping")
class MappingCodec(Codec[MappingOptions]):
    """Maps JSON or plain-text payloads to events by the controller's rules."""

    def __init__(self, options: MappingOptions) -> None:
        super().__init__(options)
        self._rules = [_CompiledRule(rule) for rule in options.effective_rules()]
        self._states = StateMemory()
        self._unmatched_seen: set[str] = set()

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the event of the first rule that matches the topic."""
        for compiled in self._rules:
            captured = (
                {} if compiled.levels is None else match_topic(compiled.levels, message.topic)
            )
            if captured is not None:
                return self._apply(compiled, _Message(message, captured), message)
        if (
            message.topic not in self._unmatched_seen
            and len(self._unmatched_seen) < _MAX_LOGGED_TOPICS
        ):
            self._unmatched_seen.add(message.topic)
            log.info("no mapping rule matches topic", source=self.options.id, topic=message.topic)
        return []

    def _apply(
        self, compiled: _CompiledRule, msg: _Message, inbound: InboundMessage
    ) -> list[Event]:
        rule = compiled.rule
        kind, value = self._kind(compiled, msg)
        if kind is None:
            if rule.unmapped == "ignore":
                return []
            kind = EventKind.UNKNOWN
        device = self._text(msg, rule.device, MAX_ID_CHARS)
        door = self._text(msg, rule.door, MAX_ID_CHARS)
        raw_credential = self._text(msg, rule.credential, 64)
        credential = mask_credential(raw_credential) if raw_credential else None
        reason = self._text(msg, rule.reason, MAX_TEXT_CHARS)
        if reason is None and kind is EventKind.UNKNOWN and value is not None:
            reason = cap(f"unmapped value {value}")
        direction_text = self._text(msg, rule.direction, 16)
        direction = _DIRECTIONS.get(direction_text.lower()) if direction_text else None
        time_value = msg.get(rule.time) if rule.time else None
        device_time = (
            _device_time(time_value, rule, compiled.zone) if time_value is not None else None
        )
        event_id = self._text(msg, rule.event_id, 64)
        group = _STATE_GROUPS.get(kind)
        if group is not None and rule.changes_only:
            subject = (group, device or "", door or "")
            if self._states.change(subject, kind.value) is None:
                return []
        if event_id is not None:
            key = f"mapping:{self.options.id}:{device or '-'}:{event_id}"
        elif time_value is not None:
            parts = (msg.topic, kind.value, device, door, scalar_text(time_value, "time"))
            key = f"mapping:{self.options.id}:" + digest(*parts, credential)
        else:
            key = f"mapping:{self.options.id}:{kind.value}:{self._states.version()}"
        return [
            build_event(
                kind,
                inbound,
                source=self.options.id,
                device=device,
                door_ref=door,
                credential=credential,
                holder=self._text(msg, rule.holder, MAX_TEXT_CHARS),
                direction=direction,
                reason=reason,
                device_time=device_time,
                dedupe_key=key,
            )
        ]

    @staticmethod
    def _kind(compiled: _CompiledRule, msg: _Message) -> tuple[EventKind | None, str | None]:
        """The kind from the value maps (or the fixed kind), and the value that was looked up."""
        looked_up: str | None = None
        for source, exact, folded in compiled.kinds:
            value = msg.get(source)
            if value is None:
                continue
            text = scalar_text(value, source)
            looked_up = looked_up or text
            kind = exact.get(text) or folded.get(text.lower())
            if kind is not None:
                return kind, text
        return compiled.rule.kind, looked_up

    @staticmethod
    def _text(msg: _Message, source: str | None, limit: int) -> str | None:
        if source is None:
            return None
        value = msg.get(source)
        if value is None:
            return None
        text = scalar_text(value, source).strip()
        return cap(text, limit) if text else None


def _device_time(value: object, rule: MappingRule, zone: ZoneInfo | None) -> datetime | None:
    """The device's time in UTC, or None when it cannot be trusted or read."""
    if isinstance(value, dict | list | bool):
        raise wrong_type(rule.time or "time", "a time", value)
    if rule.time_format == "iso":
        if not isinstance(value, str):
            raise wrong_type(rule.time or "time", "an ISO-8601 string", value)
        try:
            moment = datetime.fromisoformat(value.strip()[:64])
        except ValueError:
            return None
        if moment.tzinfo is None:
            if zone is None:
                return None  # A wall-clock time with no zone says nothing exact.
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        return None
    if not isinstance(number, int | float):
        raise DecodeError(
            f"field {rule.time} must be a number, got {type_name(value)}", kind="wrong_type"
        )
    seconds = number / 1000 if rule.time_format == "epoch_ms" else number
    if not 0 < seconds <= _MAX_EPOCH_S:
        return None
    return datetime.fromtimestamp(seconds, UTC)
