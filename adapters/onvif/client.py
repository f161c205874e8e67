"""The typed boundary around ``onvif-zeep-async``: the only module that touches its objects.

:class:`OnvifSession` is one login to one camera (an ``ONVIFCamera`` with
``adjust_time=True``, its services and, once subscribed, its ``PullPointManager``). Its
methods take and return plain Python values; every failure leaves it as a
:class:`CameraError` of one of three kinds, so the subscription state machine decides on
kinds, never on library exception types:

* ``auth``: the camera refused our credentials (a ``NotAuthorized`` SOAP Fault, or an HTML
  401 page from a Hikvision in "Digest" mode). Retried a few times only: cameras lock accounts.
* ``subscription``: any other SOAP Fault. The camera no longer knows our subscription
  (it rebooted, or the subscription expired) or refused a call: resubscribe.
* ``network``: unreachable, timed out, closed mid-answer, or answered with garbage.

Notification messages are not bound by zeep. A zeep ingress plugin on the pull-point
service lifts each ``PullMessagesResponse`` out of the reply as bytes before zeep binds it, and
:mod:`doorwatch.adapters.onvif.messages` parses it: the same parser ``doorwatch decode
--format onvif`` uses, so what the daemon reads and what an operator pastes into ``decode``
are read by one piece of code. It also keeps one bad timestamp (``0000-00-00T00:00:00Z``)
from failing a whole pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
import zeep
import zeep.exceptions
from zeep.wsdl.utils import etree_to_string

from doorwatch.adapters.onvif.messages import NotificationBatch, parse_notifications
from doorwatch.errors import DecodeError

T = TypeVar("T")


def _import_onvif() -> Any:
    """Import onvif-zeep-async without the ``logging.basicConfig(level=INFO)`` it runs.

    That call would print every library's INFO records as plain text next to our structured
    logs (journald); only the handler and level it added are taken back.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import onvif.client
    import onvif.exceptions
    import onvif.util

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return onvif


_onvif = _import_onvif()
ONVIFCamera: Any = _onvif.client.ONVIFCamera
ONVIFError: type[Exception] = _onvif.exceptions.ONVIFError
ONVIFAuthError: type[Exception] = _onvif.exceptions.ONVIFAuthError
is_auth_error: Callable[[Exception], bool] = _onvif.util.is_auth_error
stringify_onvif_error: Callable[[Exception], str] = _onvif.util.stringify_onvif_error
normalize_url: Callable[[str], str | None] = _onvif.util.normalize_url

_SOAP_BODIES = (
    "{http://www.w3.org/2003/05/soap-envelope}Body",
    "{http://schemas.xmlsoap.org/soap/envelope/}Body",
)
# An HTML error page in a Fault's detail that says "401" or "Unauthorized".
_HTTP_401 = re.compile(rb"\b401\b|unauthori[sz]ed", re.IGNORECASE)
# While the manager swaps a subscription, look for the new pull-point service this often.
_REPLACED_POLL = 0.05
# Error texts are cut to this: one readable log line, not a dumped HTML page.
_DETAIL_CHARS = 200


class FailureKind(enum.Enum):
    """How a failed camera call is handled; see the module docstring."""

    AUTH = "auth"
    SUBSCRIPTION = "subscription"
    NETWORK = "network"


class CameraError(Exception):
    """A camera call failed; ``kind`` says how to react, ``detail`` is one log-safe line."""

    def __init__(self, kind: FailureKind, detail: str, *, unexpected: bool = False) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        # True when the exception type was not one we expected; logged with a traceback once.
        self.unexpected = unexpected


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_DETAIL_CHARS]


def classify(exc: BaseException) -> CameraError:
    """Map any exception from a camera call to a :class:`CameraError`."""
    if isinstance(exc, CameraError):
        return exc
    if isinstance(exc, ONVIFError) and not isinstance(exc, ONVIFAuthError):
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, ONVIFError):
            return classify(cause)
    if isinstance(exc, TimeoutError):
        return CameraError(FailureKind.NETWORK, "timed out")
    for classifier in (_auth, _fault, _transport):
        found = classifier(exc)
        if found is not None:
            return found
    if isinstance(exc, _NETWORK_ERRORS):
        return CameraError(FailureKind.NETWORK, _one_line(f"{type(exc).__name__}: {exc}"))
    # Anything else is a firmware answer the library did not expect (a missing element gives
    # an AttributeError deep in it). Keep the camera's loop alive and say so loudly once.
    return CameraError(
        FailureKind.NETWORK, _one_line(f"{type(exc).__name__}: {exc}"), unexpected=True
    )


# Unreachable, timed out, closed mid-answer, unreadable XML, or an ONVIFError the library
# raised for one of those.
_NETWORK_ERRORS = (
    TimeoutError,
    aiohttp.ClientError,
    OSError,
    zeep.exceptions.XMLSyntaxError,
    zeep.exceptions.XMLParseError,
    DecodeError,
    ONVIFError,
)


def _auth(exc: BaseException) -> CameraError | None:
    if isinstance(exc, ONVIFAuthError):
        return CameraError(FailureKind.AUTH, _one_line(str(exc)))
    return None


def _fault(exc: BaseException) -> CameraError | None:
    if not isinstance(exc, zeep.exceptions.Fault):
        return None
    detail = exc.detail if isinstance(exc.detail, bytes) else str(exc.detail or "").encode()
    html_401 = exc.code is None and bool(_HTTP_401.search(detail))
    if html_401:
        return CameraError(FailureKind.AUTH, "HTTP 401 (an HTML page instead of a SOAP Fault)")
    if is_auth_error(exc):
        return CameraError(FailureKind.AUTH, _one_line(str(exc.message)))
    return CameraError(FailureKind.SUBSCRIPTION, _one_line(stringify_onvif_error(exc)))


def _transport(exc: BaseException) -> CameraError | None:
    if not isinstance(exc, zeep.exceptions.TransportError):
        return None
    status = getattr(exc, "status_code", None)
    kind = FailureKind.AUTH if status in {401, 403} else FailureKind.NETWORK
    return CameraError(kind, _one_line(f"HTTP {status}: {exc.message}"))


@dataclass(frozen=True, slots=True)
class Profile:
    """A media profile, as much of it as choosing a snapshot source needs."""

    token: str
    name: str | None
    encoding: str | None
    width: int | None


class _PullCapture(zeep.Plugin):
    """Zeep ingress plugin: keeps the raw PullMessagesResponse and unbinds its messages.

    Only the session's own pull loop calls PullMessages on its pull-point service, and zeep
    runs ingress plugins synchronously between receiving the reply and returning it, so the
    captured bytes always belong to the call that is returning.
    """

    def __init__(self) -> None:
        self.captured: bytes | None = None

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> tuple[Any, Any]:
        if getattr(operation, "name", None) != "PullMessages":
            return envelope, http_headers
        for body_tag in _SOAP_BODIES:
            body = envelope.find(body_tag)
            if body is None:
                continue
            for response in body:
                if str(response.tag).endswith("}PullMessagesResponse"):
                    self.captured = etree_to_string(response)  # type: ignore[no-untyped-call]
                    for child in list(response):
                        if str(child.tag).endswith("}NotificationMessage"):
                            response.remove(child)
        return envelope, http_headers

    def take(self) -> bytes | None:
        captured, self.captured = self.captured, None
        return captured


def _closed(service: Any) -> bool:
    """Whether an ONVIF service's HTTP session has been closed (by the library or by us)."""
    return bool(service.transport.session.closed)


class OnvifSession:
    """One login to one camera; create a new one to start over (after a reboot or lockout)."""

    def __init__(self, host: str, port: int, username: str | None, password: str | None) -> None:
        """Remember where and who; nothing touches the network until :meth:`connect`."""
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._camera: Any = None
        self._manager: Any = None
        self._capture = _PullCapture()

    @property
    def subscribed(self) -> bool:
        """Whether a pull-point subscription exists (the manager renews it)."""
        return self._manager is not None

    @property
    def clock_offset(self) -> float | None:
        """Camera clock minus ours in seconds, from GetSystemDateAndTime at connect."""
        diff = getattr(self._camera, "dt_diff", None)
        return diff.total_seconds() if isinstance(diff, timedelta) else None

    async def _call(self, what: Awaitable[T], within: float) -> T:
        try:
            async with asyncio.timeout(within):
                return await what
        except Exception as exc:
            raise classify(exc) from exc

    async def connect(self, within: float) -> None:
        """Measure the camera clock (anonymously) and discover its service addresses."""
        if self._camera is None:
            self._camera = ONVIFCamera(
                self._host, self._port, self._username, self._password, adjust_time=True
            )
        await self._call(self._camera.update_xaddrs(), within)

    async def subscribe(self, interval: float, on_lost: Callable[[], None], within: float) -> None:
        """CreatePullPointSubscription through the library's manager, then SetSynchronizationPoint.

        The manager renews at 80 % of the granted window and restarts the subscription by
        itself when a Renew fails; ``on_lost`` is told when that happens.
        """
        assert self._camera is not None, "connect first"
        self._manager = await self._call(
            self._camera.create_pullpoint_manager(timedelta(seconds=interval), on_lost), within
        )
        # Best effort (the library swallows its errors): the answer is a burst of
        # Initialized messages, the camera's current state.
        await self._call(self._manager.set_synchronization_point(), within)

    async def pull(self, long_poll: float, limit: int, within: float) -> NotificationBatch:
        """One PullMessages: the camera may hold it ``long_poll`` s; we wait ``within`` s."""
        assert self._manager is not None, "subscribe first"
        service = self._manager.get_service()
        try:
            return await self._pull_on(service, long_poll, limit, within)
        except CameraError:
            # When a Renew fails, the manager subscribes again and closes the pull-point
            # service this pull was using; that is not the camera failing. Wait for the
            # new service and pull on it.
            if not _closed(service) or not await self._replaced(service, within):
                raise
        return await self._pull_on(self._manager.get_service(), long_poll, limit, within)

    async def _replaced(self, service: Any, within: float) -> bool:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if self._manager is None:
                return False
            current = self._manager.get_service()
            if current is not service and not _closed(current):
                return True
            await asyncio.sleep(_REPLACED_POLL)
        return False

    async def _pull_on(
        self, service: Any, long_poll: float, limit: int, within: float
    ) -> NotificationBatch:
        plugins = service.zeep_client.plugins
        if self._capture not in plugins:
            plugins.append(self._capture)
        self._capture.take()
        await self._call(
            service.PullMessages({"MessageLimit": limit, "Timeout": timedelta(seconds=long_poll)}),
            within,
        )
        payload = self._capture.take()
        if payload is None:
            raise CameraError(FailureKind.NETWORK, "answer held no PullMessagesResponse")
        try:
            return parse_notifications(payload)
        except DecodeError as exc:
            raise classify(exc) from exc

    async def profiles(self, within: float) -> list[Profile]:
        """The camera's media profiles (GetProfiles)."""
        assert self._camera is not None, "connect first"
        media = await self._call(self._camera.create_media_service(), within)
        found = await self._call(media.GetProfiles(), within)
        profiles: list[Profile] = []
        for item in found or []:
            encoder = getattr(item, "VideoEncoderConfiguration", None)
            resolution = getattr(encoder, "Resolution", None)
            width = getattr(resolution, "Width", None)
            encoding = getattr(encoder, "Encoding", None)
            name = getattr(item, "Name", None)
            profiles.append(
                Profile(
                    token=str(item.token),
                    name=str(name) if name is not None else None,
                    encoding=str(encoding) if encoding is not None else None,
                    width=int(width) if width is not None else None,
                )
            )
        return profiles

    async def snapshot_uri(self, token: str, within: float) -> str | None:
        """GetSnapshotUri for a profile, asked afresh (a rebooted camera may move it).

        Returns None when the camera answers with a Fault or without a URI.
        """
        assert self._camera is not None, "connect first"
        media = await self._call(self._camera.create_media_service(), within)
        try:
            result = await self._call(media.GetSnapshotUri({"ProfileToken": token}), within)
        except CameraError as err:
            if err.kind is FailureKind.SUBSCRIPTION:
                return None  # A Fault: this profile has no snapshot.
            raise
        uri = getattr(result, "Uri", None)
        return normalize_url(str(uri)) if uri else None

    def pause(self) -> None:
        """Stop the manager's renewals without telling the camera (no Unsubscribe)."""
        if self._manager is not None:
            self._manager.pause()

    async def unsubscribe(self, within: float) -> None:
        """Best-effort Unsubscribe, for shutdown only: some cameras drop every subscriber."""
        manager, self._manager = self._manager, None
        if manager is not None:
            try:
                await self._call(manager.shutdown(), within)
            except CameraError:
                return

    async def close(self) -> None:
        """Stop renewals and close every HTTP session; the camera is not told."""
        self.pause()
        self._manager = None
        camera, self._camera = self._camera, None
        if camera is not None:
            # Closing sockets must not fail a shutdown or a reconnect.
            with contextlib.suppress(Exception):
                await camera.close()
