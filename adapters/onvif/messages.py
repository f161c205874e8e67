"""ONVIF notification XML -> a small typed intermediate, parsed safely, in one place.

Both the live pull loop and ``doorwatch decode --format onvif`` turn raw XML into
:class:`Notification` values here and nowhere else; the normaliser only ever sees these.
The parser refuses DTDs and entity declarations (no XXE, no billion laughs), caps size and
depth, and raises :class:`~doorwatch.errors.DecodeError` with a one-line reason.

Accepted documents: a SOAP envelope holding a ``PullMessagesResponse`` (or a ``Notify``), a
bare ``PullMessagesResponse``, a bare ``wsnt:NotificationMessage`` and a bare ``Notify``.
Element names are matched by local name, because cameras disagree on prefixes and a few on
namespaces too.
"""

from __future__ import annotations

import copy
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import defusedxml
import defusedxml.ElementTree as SafeET

from doorwatch.errors import DecodeError

# A PullMessagesResponse with the 100-message limit is ~100-200 kB; 4 MiB leaves room for
# verbose firmwares and is what ``doorwatch decode`` reads at most anyway.
MAX_XML_BYTES = 4 * 1024 * 1024
# ONVIF envelopes nest about ten levels deep; anything far deeper is an attack or garbage.
MAX_XML_DEPTH = 64
# Element count cap: enough for 100 messages with dozens of items each.
MAX_XML_ELEMENTS = 200_000

Items = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Notification:
    """One ``wsnt:NotificationMessage``, with everything the normaliser needs as plain text."""

    # The topic exactly as the camera wrote it (prefixes and odd suffixes included).
    topic: str
    # Source, Key and Data simple items as (name, value) pairs, in document order.
    source: Items
    key: Items
    data: Items
    # ``tt:Message@UtcTime`` parsed (camera clock), or None when missing or unparseable.
    utc_time: datetime | None
    # The attribute text as written, kept for the dedupe key and for dumps.
    utc_time_text: str | None
    # ``Initialized``, ``Changed``, ``Deleted`` or None for non-property events.
    property_operation: str | None
    # The message as compact XML: what the unknown-topic log prints, pasteable into a test.
    xml: str

    def data_value(self, *names: str) -> str | None:
        """Return the first Data item value among ``names`` (case-insensitive)."""
        return _lookup(self.data, names)

    def source_value(self, *names: str) -> str | None:
        """Return the first Source item value among ``names`` (case-insensitive)."""
        return _lookup(self.source, names)


@dataclass(frozen=True, slots=True)
class NotificationBatch:
    """What one PullMessagesResponse (or envelope given to decode) carried."""

    # The camera's clock when it answered (``CurrentTime``), used to measure skew.
    current_time: datetime | None
    termination_time: datetime | None
    notifications: tuple[Notification, ...]


def _lookup(items: Items, names: tuple[str, ...]) -> str | None:
    wanted = [n.casefold() for n in names]
    for name in wanted:
        for item_name, value in items:
            if _local(item_name).casefold() == name:
                return value
    return None


def _local(tag: str) -> str:
    """Local part of ``{ns}name`` or ``prefix:name``."""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def parse_xml(payload: bytes) -> ET.Element:
    """Parse untrusted XML with size, depth, DTD and entity limits.

    Raises:
        DecodeError: the payload is too large, too deep, not XML, or uses a DTD or entities.
    """
    if len(payload) > MAX_XML_BYTES:
        raise DecodeError(f"XML larger than {MAX_XML_BYTES} bytes", kind="too_large")
    if not payload.strip():
        raise DecodeError("empty input, expected ONVIF XML", kind="malformed")
    try:
        return _parse_bounded(payload)
    except defusedxml.DefusedXmlException as exc:
        raise DecodeError(
            f"XML with a DTD or entity declarations is refused ({type(exc).__name__})",
            kind="unsupported",
        ) from None
    except ET.ParseError as exc:
        raise DecodeError(f"not well-formed XML: {exc}", kind="malformed") from None


def _parse_bounded(payload: bytes) -> ET.Element:
    depth = 0
    count = 0
    root: ET.Element | None = None
    events = SafeET.iterparse(io.BytesIO(payload), events=("start", "end"), forbid_dtd=True)
    for event, element in events:
        if event == "end":
            depth -= 1
            continue
        root = element if root is None else root
        depth += 1
        count += 1
        if depth > MAX_XML_DEPTH:
            raise DecodeError(f"XML nested deeper than {MAX_XML_DEPTH} levels", kind="too_deep")
        if count > MAX_XML_ELEMENTS:
            raise DecodeError(f"XML with more than {MAX_XML_ELEMENTS} elements", kind="too_large")
    if root is None:  # pragma: no cover - iterparse raises on a document without a root.
        raise DecodeError("no XML element found", kind="malformed")
    return root


def parse_notifications(payload: bytes) -> NotificationBatch:
    """Parse an envelope, PullMessagesResponse, Notify or NotificationMessage.

    Raises:
        DecodeError: unsafe or malformed XML, a SOAP Fault, or a document of another kind.
    """
    return batch_from_element(parse_xml(payload))


def batch_from_element(root: ET.Element) -> NotificationBatch:
    """Build a batch from an already (safely) parsed document.

    Raises:
        DecodeError: a SOAP Fault, or a document that carries no notifications.
    """
    element = root
    if _local(element.tag) == "Envelope":
        body = _child(element, "Body")
        if body is None or len(body) == 0:
            raise DecodeError("SOAP envelope without a body", kind="wrong_type")
        element = body[0]
    name = _local(element.tag)
    if name == "Fault":
        reason = " ".join("".join(element.itertext()).split())[:200]
        raise DecodeError(f"SOAP Fault: {reason or 'no reason given'}", kind="wrong_type")
    if name == "NotificationMessage":
        return NotificationBatch(None, None, (notification_from_element(element),))
    if name in {"PullMessagesResponse", "Notify"}:
        messages = tuple(
            notification_from_element(child)
            for child in element
            if _local(child.tag) == "NotificationMessage"
        )
        return NotificationBatch(
            parse_onvif_time(_child_text(element, "CurrentTime")),
            parse_onvif_time(_child_text(element, "TerminationTime")),
            messages,
        )
    raise DecodeError(
        f"expected a PullMessagesResponse or NotificationMessage, got <{name}>",
        kind="wrong_type",
    )


def notification_from_element(element: ET.Element) -> Notification:
    """Convert one NotificationMessage element; tolerant of the quirks cameras show."""
    topic_element = _child(element, "Topic")
    topic = " ".join("".join(topic_element.itertext()).split()) if topic_element is not None else ""
    outer = _child(element, "Message")
    message = None
    if outer is not None:
        message = _child(outer, "Message")
        if message is None and outer.get("UtcTime") is not None:
            message = outer  # Some firmwares drop the wrapping wsnt:Message level.
    utc_text = message.get("UtcTime") if message is not None else None
    operation = message.get("PropertyOperation") if message is not None else None
    return Notification(
        topic=topic,
        source=_items(message, "Source"),
        key=_items(message, "Key"),
        data=_items(message, "Data"),
        utc_time=parse_onvif_time(utc_text),
        utc_time_text=utc_text.strip() if utc_text else None,
        property_operation=operation.strip() if operation else None,
        xml=compact_xml(element),
    )


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    return child.text if child is not None else None


def _items(message: ET.Element | None, section: str) -> Items:
    if message is None:
        return ()
    holder = _child(message, section)
    if holder is None:
        return ()
    items: list[tuple[str, str]] = []
    for item in holder:
        # Some firmwares write Key items as SimpleItemDescription (a schema element with a
        # Type instead of a Value); those carry no value and are skipped, not fatal.
        if not _local(item.tag).startswith("SimpleItem"):
            continue
        name, value = item.get("Name"), item.get("Value")
        if name is not None and value is not None:
            items.append((name.strip(), value.strip()))
    return tuple(items)


def compact_xml(element: ET.Element) -> str:
    """Serialise an element on one line, without indentation whitespace."""
    clone = copy.deepcopy(element)
    for node in clone.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return ET.tostring(clone, encoding="unicode")


_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_onvif_time(text: str | None) -> datetime | None:
    """Parse an xs:dateTime as cameras write it; None when it is not a real moment.

    Tolerates ``2010-01-01-00:00:00`` (``-`` for ``T``), ``2023-05-15T-07:10:32Z`` and
    overflowing fields such as ``00:61:16`` (carried into the next unit). Hikvision's
    ``0000-00-00T00:00:00Z`` and other impossible dates give None. Naive times are UTC.
    """
    if not text:
        return None
    value = text.strip()
    if len(value) > 10 and value[10] in "- ":  # noqa: PLR2004 - position of the date/time separator.
        value = value[:10] + "T" + value[11:]
    if len(value) > 11 and value[11] == "-":  # noqa: PLR2004
        value = value[:11] + value[12:]
    if len(value) == 10:  # noqa: PLR2004 - a bare date.
        value += "T00:00:00"
    match = _TIME.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), tzinfo=UTC)
    except ValueError:
        return None
    moment += timedelta(
        hours=int(hour),
        minutes=int(minute),
        seconds=int(second) + (float(fraction) if fraction else 0.0),
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment
