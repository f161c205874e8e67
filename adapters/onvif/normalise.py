"""ONVIF topics -> canonical events, driven by one table.

Every supported topic is one :class:`TopicRule` row in :data:`TOPICS`: a topic pattern (local
names, prefixes stripped), the subject its source item names (a door, an access point, a
camera input, or the camera itself) and how its value reads (:class:`Flag` for booleans,
:class:`Choice` for enumerations, :class:`Always` for one-shot events). Topics in
:data:`IGNORED` are known and deliberately produce nothing; anything else becomes an
``unknown`` event, logged once per (camera, topic) with a compact XML dump that can be pasted
into a test or into ``doorwatch decode --format onvif``.

Rules of reading, for every row:

* Topics are compared by local names, case-insensitively: ``tns1:`` (nested or doubled),
  vendor prefixes such as ``tnsaxis:`` and the suffixes ``//.``, ``/.`` and ``/`` are dropped.
* Booleans are ``true/1/active/on`` and ``false/0/inactive/off``, case-insensitive.
* ``PropertyOperation="Initialized"`` is a state snapshot (after subscribing, a
  SetSynchronizationPoint or a camera reboot): the event is ``replayed`` and never an alarm
  edge. ``Deleted`` reads as the property's "off" state (an object left the field).
* ``device_time`` is the message's ``UtcTime`` only when the caller trusts the camera clock
  and the time is plausible (cameras with an unset clock report the year 2000).
* The dedupe key hashes camera id, topic, Source/Key/Data items, ``UtcTime`` text and the
  property operation, so a message pulled twice (a replayed snapshot) has the same key.

Camera inputs: a digital input, Axis I/O port or Hikvision alarm input is ``input.active`` /
``input.inactive`` with the input token as ``door_ref``. The camera adapter then applies
:func:`map_inputs`: an input listed in the camera's ``inputs:`` is a door contact and becomes
``door.opened`` / ``door.closed`` (``door_open_when`` says which input state means open);
an unlisted input stays an ``input.*`` event with no door. ``doorwatch decode`` without a
config keeps the ``input.*`` kinds with ``door`` set to the input token.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from doorwatch.adapters.onvif.messages import Notification, parse_notifications
from doorwatch.events import Event, EventKind, content_key, mask_credential

log = structlog.get_logger(__name__)

TRUE_WORDS = frozenset({"true", "1", "active", "on"})
FALSE_WORDS = frozenset({"false", "0", "inactive", "off"})

# Cameras with a reset clock report 2000-01-01; nothing real happened before this.
_EARLIEST_PLAUSIBLE = datetime(2001, 1, 1, tzinfo=UTC)
# A message time further ahead than this of our own clock is a wrong clock, not an event.
_FUTURE_SLACK = timedelta(days=1)

DoorOpenWhen = Literal["active", "inactive"]
# Distinct topics remembered per camera (match cache, unknown topics already logged). A camera
# has a few dozen; a cap keeps a misbehaving one from growing memory without bound.
_TOPICS_REMEMBERED = 1024


def parse_bool(value: str | None) -> bool | None:
    """Read an ONVIF boolean as cameras write it; None when it is neither."""
    if value is None:
        return None
    word = value.strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def topic_path(topic: str) -> str:
    """The topic as local names.

    ``tns1:RuleEngine/tns1:CellMotionDetector/Motion//.`` becomes
    ``RuleEngine/CellMotionDetector/Motion``.
    """
    text = "".join(topic.split())
    segments = (segment.rsplit(":", 1)[-1] for segment in text.split("/"))
    return "/".join(s for s in segments if s and s != ".")


class Subject(enum.Enum):
    """What a topic's Source items name, and which item names carry the reference."""

    DOOR = ("DoorToken",)
    ACCESS_POINT = ("AccessPointToken",)
    # DigitalInput InputToken, Axis I/O ``port``, Hikvision ``AlarmInToken``.
    INPUT = ("InputToken", "port", "AlarmInToken")
    CAMERA = ()


@dataclass(frozen=True, slots=True)
class Flag:
    """A boolean property: ``on`` when true, ``off`` (or nothing) when false or Deleted."""

    items: tuple[str, ...]
    on: EventKind
    off: EventKind | None


@dataclass(frozen=True, slots=True)
class Choice:
    """An enumerated property; values are compared case-insensitively."""

    item: str
    values: Mapping[str, EventKind]
    # Values that carry no information (``Unknown``) and produce no event.
    ignore: frozenset[str] = frozenset({"unknown"})


@dataclass(frozen=True, slots=True)
class Always:
    """A one-shot event (access decisions, line crossings): the topic alone says it."""

    kind: EventKind


Reading = Flag | Choice | Always


@dataclass(frozen=True, slots=True)
class TopicRule:
    """One row of the table: a pattern of local names, a subject and a reading.

    In patterns ``*`` matches one segment and a final ``**`` matches any number (also none).
    """

    pattern: str
    subject: Subject
    reading: Reading
    _segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_segments", tuple(self.pattern.casefold().split("/")))

    def matches(self, segments: Sequence[str]) -> bool:
        """Whether a topic (local names, casefolded, split on ``/``) fits this pattern."""
        pattern = self._segments
        if pattern and pattern[-1] == "**":
            head = pattern[:-1]
            return len(segments) >= len(head) and _fits(head, segments[: len(head)])
        return len(segments) == len(pattern) and _fits(pattern, segments)


def _fits(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    return all(p in {"*", s} for p, s in zip(pattern, segments, strict=True))


K = EventKind
_DOOR_MODES: Mapping[str, EventKind] = {
    "locked": K.DOOR_LOCKED,
    "doublelocked": K.DOOR_LOCKED,
    "lockeddown": K.DOOR_LOCKED,
    "blocked": K.DOOR_LOCKED,
    "unlocked": K.DOOR_UNLOCKED,
    "lockedopen": K.DOOR_UNLOCKED,
    "accessed": K.DOOR_UNLOCKED,
}

TOPICS: tuple[TopicRule, ...] = (
    # --- Doors (ONVIF Door Control: a Profile C controller such as an Axis A1001) ---
    TopicRule(
        "Door/State/DoorPhysicalState",
        Subject.DOOR,
        Choice("State", {"open": K.DOOR_OPENED, "closed": K.DOOR_CLOSED}),
    ),
    TopicRule(
        "Door/State/DoorAlarm",
        Subject.DOOR,
        Choice(
            "State",
            {
                "normal": K.DOOR_ALARM_CLEARED,
                "doorforcedopen": K.DOOR_FORCED,
                "dooropentoolong": K.DOOR_HELD_OPEN,
            },
        ),
    ),
    TopicRule("Door/State/DoorMode", Subject.DOOR, Choice("State", _DOOR_MODES)),
    TopicRule(
        "Door/State/LockPhysicalState",
        Subject.DOOR,
        Choice("State", {"locked": K.DOOR_LOCKED, "unlocked": K.DOOR_UNLOCKED}),
    ),
    # Axis: the pre-alarm before DoorOpenTooLong (its PreAlarmTime).
    TopicRule("Door/State/DoorWarning", Subject.DOOR, Flag(("State",), K.DOOR_HELD_WARNING, None)),
    # --- Access decisions (ONVIF Access Control) ---
    TopicRule("AccessControl/AccessGranted/**", Subject.ACCESS_POINT, Always(K.ACCESS_GRANTED)),
    TopicRule("AccessControl/Denied/**", Subject.ACCESS_POINT, Always(K.ACCESS_DENIED)),
    TopicRule("AccessControl/Duress", Subject.ACCESS_POINT, Always(K.ACCESS_DURESS)),
    # --- Camera inputs (door contacts or anything else wired to the camera) ---
    TopicRule(
        "Device/Trigger/DigitalInput",
        Subject.INPUT,
        Flag(("LogicalState",), K.INPUT_ACTIVE, K.INPUT_INACTIVE),
    ),
    TopicRule("Device/IO/Port", Subject.INPUT, Flag(("state",), K.INPUT_ACTIVE, K.INPUT_INACTIVE)),
    TopicRule(
        "Device/Trigger/AlarmIn", Subject.INPUT, Flag(("State",), K.INPUT_ACTIVE, K.INPUT_INACTIVE)
    ),
    # --- Motion: standard detectors, then vendor variants ---
    TopicRule(
        "RuleEngine/CellMotionDetector/Motion",
        Subject.CAMERA,
        Flag(("IsMotion",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    TopicRule(
        "VideoSource/MotionAlarm",
        Subject.CAMERA,
        Flag(("State",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    TopicRule(
        "RuleEngine/MotionRegionDetector/Motion",
        Subject.CAMERA,
        Flag(("State",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    TopicRule(
        "RuleEngine/FieldDetector/ObjectsInside",
        Subject.CAMERA,
        Flag(("IsInside",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    TopicRule("RuleEngine/LineDetector/Crossed", Subject.CAMERA, Always(K.CAMERA_MOTION)),
    # Reolink smart detection.
    TopicRule(
        "RuleEngine/MyRuleDetector/PeopleDetect",
        Subject.CAMERA,
        Flag(("IsPeople",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    TopicRule(
        "RuleEngine/MyRuleDetector/VehicleDetect",
        Subject.CAMERA,
        Flag(("IsVehicle",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    # TP-Link Tapo person detection.
    TopicRule(
        "RuleEngine/PeopleDetector/People",
        Subject.CAMERA,
        Flag(("IsPeople",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    # Axis classic motion detection (tnsaxis:MotionDetection, data item ``motion``).
    TopicRule(
        "VideoAnalytics/MotionDetection",
        Subject.CAMERA,
        Flag(("motion",), K.CAMERA_MOTION, K.CAMERA_MOTION_STOPPED),
    ),
    # --- Tamper: covered, moved, blinded or unplugged cameras ---
    TopicRule(
        "RuleEngine/TamperDetector/Tamper",
        Subject.CAMERA,
        Flag(("IsTamper",), K.CAMERA_TAMPER, K.CAMERA_TAMPER_CLEARED),
    ),
    TopicRule(
        "VideoSource/GlobalSceneChange/**",
        Subject.CAMERA,
        Flag(("State",), K.CAMERA_TAMPER, K.CAMERA_TAMPER_CLEARED),
    ),
    TopicRule(
        "VideoSource/SignalLoss",
        Subject.CAMERA,
        Flag(("State",), K.CAMERA_TAMPER, K.CAMERA_TAMPER_CLEARED),
    ),
    # Axis tnsaxis:Tampering (a one-shot with data item ``tampering``).
    TopicRule(
        "VideoSource/Tampering",
        Subject.CAMERA,
        Flag(("tampering",), K.CAMERA_TAMPER, K.CAMERA_TAMPER_CLEARED),
    ),
)

# Known topics that carry nothing doorwatch acts on. Monitoring topics (processor usage,
# uptime) arrive every few seconds on many cameras and would flood the journal; image-quality
# topics (too dark at night, too bright at noon) are not tampering.
IGNORED: tuple[TopicRule, ...] = tuple(
    TopicRule(pattern, Subject.CAMERA, Always(K.UNKNOWN))
    for pattern in (
        "AccessControl/AccessTaken/**",
        "AccessControl/AccessNotTaken/**",
        "AccessControl/Request/**",
        "AccessPoint/**",
        "Configuration/**",
        "Monitoring/**",
        "Device/Trigger/Relay",
        "VideoSource/ImageTooBlurry/**",
        "VideoSource/ImageTooDark/**",
        "VideoSource/ImageTooBright/**",
    )
)

# Denied sub-topics that name the reason when the message has no Reason item.
_DENIED_VARIANTS = frozenset({"credential", "anonymous", "identifier", "authentication"})
# The Access Control spec's denial reasons; clients must read anything else as ``Other``.
_DENIED_REASONS = frozenset(
    {
        "CredentialNotEnabled",
        "CredentialNotActive",
        "CredentialExpired",
        "InvalidPIN",
        "NotPermittedAtThisTime",
        "Unauthorized",
        "Other",
        "pt:InvalidIdentifierValue",
    }
)


@dataclass(frozen=True, slots=True)
class _Match:
    rule: TopicRule | None
    ignored: bool


class Normaliser:
    """Turns one camera's notifications into canonical events, by the table."""

    def __init__(
        self,
        source: str,
        *,
        on_unknown: Callable[[str], None] | None = None,
    ) -> None:
        """Create a normaliser for one source (the camera id).

        Args:
            source: the camera id; it becomes ``source``, ``device`` and ``camera``.
            on_unknown: called with the topic of every unknown message (metrics).
        """
        self.source = source
        self.on_unknown = on_unknown
        self._seen_unknown: set[str] = set()
        self._matches: dict[str, _Match] = {}

    def normalise(
        self,
        notifications: Iterable[Notification],
        *,
        received_at: datetime,
        trust_device_time: bool = True,
        receipt_salt: str | None = None,
    ) -> list[Event]:
        """Turn notifications into events; ignored topics produce none.

        Args:
            notifications: what one pull (or one decoded document) carried.
            received_at: our clock at receipt; every event carries it.
            trust_device_time: whether the camera's clock is close enough to ours to report
                ``UtcTime`` as ``device_time``.
            receipt_salt: added to the dedupe key of non-snapshot messages when the camera
                clock cannot be trusted, so a frozen camera clock (every message stamped the
                same second) cannot merge distinct events into one.
        """
        events: list[Event] = []
        for index, note in enumerate(notifications):
            salt = None if receipt_salt is None else f"{receipt_salt}#{index}"
            event = self._one(note, received_at, trust_device_time, salt)
            if event is not None:
                events.append(event)
        return events

    def _match(self, path: str) -> _Match:
        found = self._matches.get(path)
        if found is None:
            if len(self._matches) >= _TOPICS_REMEMBERED:
                self._matches.clear()
            segments = path.casefold().split("/")
            rule = next((r for r in TOPICS if r.matches(segments)), None)
            ignored = rule is None and any(r.matches(segments) for r in IGNORED)
            found = self._matches[path] = _Match(rule, ignored)
        return found

    def _one(
        self,
        note: Notification,
        received_at: datetime,
        trust_device_time: bool,
        receipt_salt: str | None,
    ) -> Event | None:
        path = topic_path(note.topic)
        match = self._match(path)
        if match.ignored:
            return None
        operation = (note.property_operation or "").casefold()
        replayed = operation == "initialized"
        salt = receipt_salt if receipt_salt is not None and not replayed else ""
        rule = match.rule
        if rule is None:
            self._report_unknown(path, note)
            kind: EventKind | None = K.UNKNOWN
            reason: str | None = note.topic or "(no topic)"
            ref = None
        else:
            kind, reason = _read(rule, path, note, deleted=operation == "deleted")
            ref = note.source_value(*rule.subject.value) if rule.subject.value else None
        if kind is None:
            return None
        credential = holder = None
        if rule is not None and rule.subject is Subject.ACCESS_POINT:
            credential = mask_credential(
                note.data_value("CredentialToken", "IdentifierValue", "Card")
            )
            holder = note.data_value("CredentialHolderName")
        return Event(
            kind=kind,
            source=self.source,
            device=self.source,
            camera=self.source,
            door=ref,
            door_ref=ref,
            credential=credential,
            holder=holder,
            reason=reason,
            device_time=_device_time(note.utc_time, received_at) if trust_device_time else None,
            received_at=received_at,
            replayed=replayed,
            dedupe_key=_dedupe_key(self.source, path.casefold(), note, salt),
        )

    def _report_unknown(self, path: str, note: Notification) -> None:
        if self.on_unknown is not None:
            self.on_unknown(path)
        if path in self._seen_unknown or len(self._seen_unknown) >= _TOPICS_REMEMBERED:
            return
        self._seen_unknown.add(path)
        log.info(
            "onvif topic not understood; logged once, paste the message into a test",
            camera=self.source,
            topic=note.topic,
            message=_clip(note.xml),
            message_bytes=len(note.xml),
        )


# A real notification is a few hundred bytes; a camera that sends megabytes must not put
# them into one log line.
_LOGGED_XML = 4096


def _clip(xml: str) -> str:
    return xml if len(xml) <= _LOGGED_XML else xml[:_LOGGED_XML] + "...(clipped)"


def _read(
    rule: TopicRule, path: str, note: Notification, *, deleted: bool
) -> tuple[EventKind | None, str | None]:
    reading = rule.reading
    if isinstance(reading, Always):
        return _read_always(reading, path, note)
    if isinstance(reading, Flag):
        return _read_flag(reading, note, deleted=deleted)
    return _read_choice(reading, note, deleted=deleted)


def _read_always(reading: Always, path: str, note: Notification) -> tuple[EventKind, str | None]:
    if reading.kind is K.ACCESS_DENIED:
        return reading.kind, _denied_reason(path, note.data_value("Reason"))
    if reading.kind is K.ACCESS_DURESS:
        return reading.kind, note.data_value("Reason")
    return reading.kind, None


def _read_flag(
    reading: Flag, note: Notification, *, deleted: bool
) -> tuple[EventKind | None, str | None]:
    if deleted:
        return reading.off, None
    raw = note.data_value(*reading.items)
    state = parse_bool(raw)
    if state is None:
        return K.UNKNOWN, f"{note.topic} {'/'.join(reading.items)}={raw!r} is not a boolean"
    return (reading.on if state else reading.off), None


def _read_choice(
    reading: Choice, note: Notification, *, deleted: bool
) -> tuple[EventKind | None, str | None]:
    if deleted:
        return None, None
    raw = note.data_value(reading.item)
    value = (raw or "").strip().casefold()
    if value in reading.ignore:
        return None, raw
    kind = reading.values.get(value)
    if kind is None:
        return K.UNKNOWN, f"{note.topic} {reading.item}={raw!r}"
    return kind, raw


def _denied_reason(path: str, reason: str | None) -> str | None:
    if reason:
        return reason if reason in _DENIED_REASONS else f"Other ({reason})"
    segments = path.split("/")
    folded = [segment.casefold() for segment in segments]
    tail = segments[folded.index("denied") + 1 :] if "denied" in folded else []
    for segment in tail:
        if segment.casefold() not in _DENIED_VARIANTS:
            return segment
    return None


def _device_time(moment: datetime | None, received_at: datetime) -> datetime | None:
    if moment is None or moment < _EARLIEST_PLAUSIBLE or moment > received_at + _FUTURE_SLACK:
        return None
    return moment


def _dedupe_key(source: str, path: str, note: Notification, salt: str) -> str:
    return content_key(
        f"onvif:{source}",
        path,
        sorted(note.source),
        sorted(note.key),
        sorted(note.data),
        note.utc_time_text or "",
        note.property_operation or "",
        salt,
    )


def map_inputs(
    events: Iterable[Event], inputs: Mapping[str, str], door_open_when: DoorOpenWhen = "active"
) -> list[Event]:
    """Turn inputs listed in ``inputs:`` into door contacts; unlisted inputs get no door.

    ``door_open_when`` is the input state that means "door open": ``active`` for the usual
    wiring where the camera's input is configured to be active on alarm, ``inactive`` for an
    unconfigured input on a normally-closed contact (DeviceIo: true means circuit closed).
    """
    out: list[Event] = []
    for event in events:
        if event.kind not in {K.INPUT_ACTIVE, K.INPUT_INACTIVE}:
            out.append(event)
            continue
        door = inputs.get(event.door_ref or "")
        if door is None:
            out.append(event.replace(door=None))
            continue
        active = event.kind is K.INPUT_ACTIVE
        opened = active == (door_open_when == "active")
        out.append(event.replace(kind=K.DOOR_OPENED if opened else K.DOOR_CLOSED, door=door))
    return out


def decode_envelope(payload: bytes, *, source: str, received_at: datetime) -> list[Event]:
    """Decode a PullMessagesResponse envelope or a bare NotificationMessage (for ``decode``).

    Raises:
        DecodeError: unsafe, malformed, oversized or unexpected XML (one-line reason).
    """
    batch = parse_notifications(payload)
    return Normaliser(source).normalise(batch.notifications, received_at=received_at)
