"""SOAP 1.2 plumbing of the fake camera: request parsing, WS-Security checks, envelopes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

from doorwatch.adapters.onvif.messages import parse_onvif_time, parse_xml
from doorwatch.errors import DecodeError

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsrf-rw": "http://docs.oasis-open.org/wsrf/rw-2",
    "tns1": "http://www.onvif.org/ver10/topics",
    "tnsaxis": "http://www.axis.com/2009/event/topics",
    "tnshik": "http://www.hikvision.com/2011/event/topics",
}
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST_TYPE_SUFFIX = "#PasswordDigest"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
_XMLNS = " ".join(f"xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in NS.items())
# Nonces remembered for replay detection; a camera keeps a short list like this one.
_NONCE_MEMORY = 4096


def local(tag: str) -> str:
    """Local part of an ElementTree ``{ns}name`` tag."""
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True, slots=True)
class UsernameToken:
    """A WS-Security UsernameToken as the client sent it."""

    username: str
    password: str
    digest: bool
    nonce: str | None
    created: str | None


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """One parsed SOAP request: the operation's element and the credentials, if any."""

    operation: str
    body: ET.Element
    token: UsernameToken | None

    def text(self, name: str) -> str | None:
        """Text of the first descendant of the operation element with this local name."""
        for element in self.body.iter():
            if local(element.tag) == name:
                return (element.text or "").strip()
        return None


def parse_request(payload: bytes) -> SoapRequest:
    """Parse a SOAP request (with the daemon's own safe parser).

    Raises:
        DecodeError: not a SOAP envelope with a body.
    """
    root = parse_xml(payload)
    header = body = None
    for child in root:
        name = local(child.tag)
        if name == "Header":
            header = child
        elif name == "Body":
            body = child
    if local(root.tag) != "Envelope" or body is None or len(body) == 0:
        raise DecodeError("not a SOAP envelope with a body")
    return SoapRequest(operation=local(body[0].tag), body=body[0], token=_token(header))


def _token(header: ET.Element | None) -> UsernameToken | None:
    if header is None:
        return None
    element = header.find(f"{{{_WSSE}}}Security/{{{_WSSE}}}UsernameToken")
    if element is None:
        return None
    password = element.find(f"{{{_WSSE}}}Password")
    nonce = element.find(f"{{{_WSSE}}}Nonce")
    created = element.find(f"{{{_WSU}}}Created")
    return UsernameToken(
        username=(element.findtext(f"{{{_WSSE}}}Username") or "").strip(),
        password=(password.text or "").strip() if password is not None else "",
        digest=password is not None and password.get("Type", "").endswith(_DIGEST_TYPE_SUFFIX),
        nonce=nonce.text.strip() if nonce is not None and nonce.text else None,
        created=created.text.strip() if created is not None and created.text else None,
    )


class TokenChecker:
    """Checks UsernameTokens like a camera does: digest, time window, no replayed nonce."""

    def __init__(self, username: str, password: str, window: float) -> None:
        """Accept ``username``/``password`` with ``Created`` within ``window`` s of our clock."""
        self.username = username
        self.password = password
        self.window = window
        self._nonces: deque[str] = deque(maxlen=_NONCE_MEMORY)
        self._seen: set[str] = set()

    def check(self, token: UsernameToken, now: datetime) -> str | None:
        """Return None when the token is good, else why it is not."""
        if not hmac.compare_digest(token.username.encode(), self.username.encode()):
            return "unknown user"
        if not token.digest:
            ok = hmac.compare_digest(token.password.encode(), self.password.encode())
            return None if ok else "wrong password"
        reason = self._check_digest(token, now)
        if reason is None:
            reason = self._check_nonce(token.nonce or "")
        return reason

    def _check_digest(self, token: UsernameToken, now: datetime) -> str | None:
        if token.nonce is None or token.created is None:
            return "digest without nonce and created"
        created = parse_onvif_time(token.created)
        if created is None:
            return "unreadable Created"
        if abs((created - now).total_seconds()) > self.window:
            return "Created outside the time window (clock skew)"
        try:
            nonce = base64.b64decode(token.nonce, validate=True)
        except binascii.Error:
            return "nonce is not base64"
        material = nonce + token.created.encode() + self.password.encode()
        # WS-Security's UsernameToken digest is SHA-1 by definition.
        expected = base64.b64encode(hashlib.sha1(material).digest()).decode()  # noqa: S324
        return None if hmac.compare_digest(expected, token.password) else "wrong password"

    def _check_nonce(self, nonce: str) -> str | None:
        if nonce in self._seen:
            return "replayed nonce"
        if len(self._nonces) == self._nonces.maxlen:
            self._seen.discard(self._nonces[0])
        self._nonces.append(nonce)
        self._seen.add(nonce)
        return None


def envelope(body: str) -> bytes:
    """A SOAP 1.2 envelope around ``body`` (XML text using the prefixes of :data:`NS`)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope {_XMLNS}>'
        f"<env:Header/><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def fault(subcode: str, reason: str, *, code: str = "env:Sender") -> bytes:
    """A SOAP 1.2 Fault envelope (``subcode`` like ``ter:NotAuthorized``)."""
    return envelope(
        "<env:Fault><env:Code>"
        f"<env:Value>{code}</env:Value>"
        f"<env:Subcode><env:Value>{subcode}</env:Value></env:Subcode>"
        "</env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>'
        "</env:Fault>"
    )


def xml_time(moment: datetime, *, millis: bool = False) -> str:
    """``2026-03-02T10:00:00Z`` (or with milliseconds)."""
    spec = "milliseconds" if millis else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str | None) -> timedelta | None:
    """An xs:duration without years or months (``PT60S``, ``PT1M``, ``P1DT2H``)."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0)
    ) + timedelta(seconds=parts.get("s", 0))


def termination(text: str | None, now: datetime, default: timedelta) -> datetime:
    """A subscription end from a relative duration or an absolute time (both are allowed)."""
    duration = parse_duration(text)
    if duration is not None:
        return now + duration
    moment = parse_onvif_time(text)
    return moment if moment is not None else now + default


def items(values: dict[str, str]) -> str:
    """``tt:SimpleItem`` elements for a Source, Key or Data list."""
    return "".join(
        f"<tt:SimpleItem Name={quoteattr(name)} Value={quoteattr(value)}/>"
        for name, value in values.items()
    )
