"""A fake ONVIF camera on aiohttp: device, events and media services plus fault switches.

It answers what ``onvif-zeep-async`` 4.x calls (SOAP 1.2): GetSystemDateAndTime,
GetCapabilities, GetServices and GetDeviceInformation on the device service;
GetEventProperties and CreatePullPointSubscription on the events service; PullMessages,
Renew, SetSynchronizationPoint and Unsubscribe on each subscription address; GetProfiles and
GetSnapshotUri on the media service; and serves a real JPEG snapshot behind HTTP Digest.
WS-Security UsernameToken digests are checked against its clock with a skew window.

Events come from :meth:`FakeCamera.emit`, a script, or ``POST /_sim/event`` with JSON
``{"topic": "tns1:...", "source": {...}, "data": {...}, "key": {...}, "operation":
"Changed"|"Initialized"|"Deleted"|null, "count": N}``. ``POST /_sim/fault`` with a JSON object
of :class:`Faults` fields switches faults; ``POST /_sim/forget`` forgets every subscription
(a reboot); ``GET /_sim/stats`` counts requests per operation.

Fault switches (:class:`Faults`): ``renew_fails`` (Renew answers a Fault), ``forget_every``
(subscriptions forgotten every N s), ``instant_empty`` (PullMessages answers at once instead
of long-polling), ``numeric_bools`` (``State="1"``), ``initialized_burst`` (N extra
properties reported ``Initialized`` on every subscribe and SetSynchronizationPoint),
``storm`` (N messages queued on every new subscription, beyond the 100-message limit),
``html_401`` (an HTML 401 page instead of a SOAP Fault), ``clock_skew`` (seconds added to its
clock), ``hang`` (answers stop mid-response until the switch is cleared), ``doubled_port``
(``host:port:port`` in subscription addresses), ``snapshot_padding`` (bytes added to the JPEG).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import structlog
from aiohttp import web

from doorwatch.adapters.onvif.fake.soap import (
    CONTENT_TYPE,
    SoapRequest,
    TokenChecker,
    envelope,
    fault,
    items,
    parse_request,
    termination,
    xml_time,
)
from doorwatch.errors import DecodeError

log = structlog.get_logger(__name__)

# Operations ONVIF allows without credentials (Core spec, PRE_AUTH).
PRE_AUTH = frozenset(
    {"GetSystemDateAndTime", "GetServices", "GetCapabilities", "GetServiceCapabilities"}
)
# A subscription created without a time gets this, like most cameras.
_DEFAULT_SUBSCRIPTION = timedelta(minutes=10)
# Long-polls are held at most this long, whatever the client asks (cameras cap it too).
_MAX_PULL_WAIT = 120.0
# Messages a subscription buffers for a slow client before dropping the oldest.
_QUEUE_LIMIT = 10_000
# Request times kept per operation, for the rate checks of tests.
_TIMES_KEPT = 10_000
# HTTP Digest nonces a camera remembers; older ones are refused (the client retries).
_NONCES_KEPT = 256
# WS-Security Created must be within this many seconds of the camera clock.
DEFAULT_AUTH_WINDOW = 5.0
_DIGEST_REALM = "fake-camera"
_TOPIC_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
_HTML_401 = (
    b"<!DOCTYPE html><html><head><title>Document Error: Unauthorized</title></head>"
    b"<body><h2>Access Error: 401 -- Unauthorized</h2><p>Authentication Error</p></body></html>"
)

DataValue = str | bool | int | float


def snapshot_jpeg() -> bytes:
    """The fake camera's picture: a real 320x240 JPEG shipped with the package."""
    return resources.files(__package__).joinpath("snapshot.jpg").read_bytes()


@dataclass
class Faults:
    """Fault switches; change them at any time (directly or with ``POST /_sim/fault``)."""

    renew_fails: bool = False
    forget_every: float = 0.0
    instant_empty: bool = False
    numeric_bools: bool = False
    initialized_burst: int = 0
    storm: int = 0
    html_401: bool = False
    clock_skew: float = 0.0
    hang: bool = False
    doubled_port: bool = False
    snapshot_padding: int = 0


@dataclass(frozen=True, slots=True)
class FakeEvent:
    """An event to publish; booleans are rendered as the ``numeric_bools`` switch says."""

    topic: str
    source: dict[str, str] = field(default_factory=dict)
    data: dict[str, DataValue] = field(default_factory=dict)
    key: dict[str, str] = field(default_factory=dict)
    # None for non-property events (access decisions).
    operation: str | None = "Changed"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FakeEvent:
        """Build from the ``/_sim/event`` JSON; raises ValueError when it is not one."""
        topic = body.get("topic")
        if not isinstance(topic, str) or not topic:
            raise ValueError("topic (a string) is required")
        sections = {}
        for name in ("source", "data", "key"):
            value = body.get(name, {})
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be an object")
            sections[name] = value
        operation = body.get("operation", "Changed")
        if operation is not None and operation not in {"Initialized", "Changed", "Deleted"}:
            raise ValueError("operation is Initialized, Changed, Deleted or null")
        return cls(
            topic=topic,
            source={str(k): str(v) for k, v in sections["source"].items()},
            data={str(k): v for k, v in sections["data"].items()},
            key={str(k): str(v) for k, v in sections["key"].items()},
            operation=operation,
        )

    @property
    def property_id(self) -> tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """What identifies this property: topic, source and key items."""
        return (self.topic, tuple(sorted(self.source.items())), tuple(sorted(self.key.items())))


@dataclass
class _Subscription:
    sid: str
    terminates: datetime
    queue: deque[str] = field(default_factory=lambda: deque(maxlen=_QUEUE_LIMIT))
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    pulling: bool = False


class FakeCamera:
    """One fake camera; serve :meth:`app` on a port (see ``fake.server``)."""

    def __init__(
        self,
        *,
        port: int,
        host: str = "127.0.0.1",
        username: str = "admin",
        password: str = "admin",  # noqa: S107 - the simulator's documented default account.
        name: str = "fake-camera",
        inputs: tuple[str, ...] = ("AlarmIn_1",),
        auth_window: float = DEFAULT_AUTH_WINDOW,
        faults: Faults | None = None,
    ) -> None:
        """Configure the camera; it serves nothing until its app runs.

        Args:
            port: the port it is served on (it advertises its own addresses).
            host: the address it advertises.
            username: the one ONVIF account.
            password: its password.
            name: model name and serial prefix.
            inputs: digital input tokens (reported as properties).
            auth_window: allowed WS-Security clock difference in seconds.
            faults: initial fault switches.
        """
        self.host = host
        self.port = port
        self.name = name
        self.username = username
        self.password = password
        self.inputs = inputs
        self.faults = faults or Faults()
        self._tokens = TokenChecker(username, password, auth_window)
        self.subscriptions: dict[str, _Subscription] = {}
        self.properties: dict[tuple[Any, ...], FakeEvent] = {}
        self.requests: Counter[str] = Counter()
        self.request_times: dict[str, deque[float]] = {}
        self.auth_failures = 0
        self.subscriptions_created = 0
        self._release = asyncio.Event()
        self._digest_nonces: deque[str] = deque(maxlen=_NONCES_KEPT)
        self._jpeg = snapshot_jpeg()
        self._started = time.monotonic()
        self._last_forget = time.monotonic()
        self._initial_properties()

    # --- clock, events, faults -------------------------------------------------------------

    def now(self) -> datetime:
        """The camera's clock (ours plus the ``clock_skew`` switch)."""
        return datetime.now(UTC) + timedelta(seconds=self.faults.clock_skew)

    def _initial_properties(self) -> None:
        for token in self.inputs:
            self._remember(
                FakeEvent(
                    "tns1:Device/Trigger/DigitalInput",
                    {"InputToken": token},
                    {"LogicalState": False},
                )
            )
        self._remember(
            FakeEvent("tns1:VideoSource/MotionAlarm", {"Source": "VideoSource_1"}, {"State": False})
        )
        self._remember(
            FakeEvent(
                "tns1:RuleEngine/TamperDetector/Tamper",
                {
                    "VideoSourceConfigurationToken": "VideoSource_1",
                    "VideoAnalyticsConfigurationToken": "Analytics_1",
                    "Rule": "Tamper",
                },
                {"IsTamper": False},
            )
        )

    def _remember(self, event: FakeEvent) -> None:
        if event.operation is None:
            return
        if event.operation == "Deleted":
            self.properties.pop(event.property_id, None)
        else:
            self.properties[event.property_id] = dataclasses.replace(event, operation="Changed")

    def emit(self, event: FakeEvent, *, count: int = 1) -> None:
        """Publish an event to every live subscription (``count`` > 1: a storm of variants)."""
        if count <= 1:
            self._remember(event)
            self._publish(self._render(event))
            return
        for index in range(count):
            variant = dataclasses.replace(event, key={**event.key, "ObjectId": str(index)})
            self._publish(self._render(variant))

    def set_faults(self, **changes: Any) -> None:
        """Change fault switches by name; clearing ``hang`` releases hung answers."""
        for name, value in changes.items():
            if not hasattr(self.faults, name):
                raise ValueError(f"unknown fault {name!r}")
            current = getattr(self.faults, name)
            setattr(self.faults, name, type(current)(value))
        if not self.faults.hang:
            self._release.set()
            self._release = asyncio.Event()

    def forget_subscriptions(self) -> None:
        """Forget every subscription, as a camera does when it reboots."""
        for subscription in self.subscriptions.values():
            subscription.wakeup.set()
        self.subscriptions.clear()
        self._last_forget = time.monotonic()

    def release(self) -> None:
        """Wake every waiting handler (shutdown)."""
        self._release.set()
        for subscription in self.subscriptions.values():
            subscription.wakeup.set()

    def _render(self, event: FakeEvent, *, operation: str | None = None) -> str:
        op = operation if operation is not None else event.operation
        data = {name: self._value(value) for name, value in event.data.items()}
        prop = f" PropertyOperation={quoteattr(op)}" if op else ""
        key = f"<tt:Key>{items(event.key)}</tt:Key>" if event.key else ""
        return (
            "<wsnt:NotificationMessage>"
            f"<wsnt:Topic Dialect={quoteattr(_TOPIC_DIALECT)}>{escape(event.topic)}</wsnt:Topic>"
            f"<wsnt:Message><tt:Message UtcTime={quoteattr(xml_time(self.now(), millis=True))}"
            f"{prop}><tt:Source>{items(event.source)}</tt:Source>{key}"
            f"<tt:Data>{items(data)}</tt:Data></tt:Message></wsnt:Message>"
            "</wsnt:NotificationMessage>"
        )

    def _value(self, value: DataValue) -> str:
        if isinstance(value, bool):
            if self.faults.numeric_bools:
                return "1" if value else "0"
            return "true" if value else "false"
        return str(value)

    def _publish(self, rendered: str, only: _Subscription | None = None) -> None:
        targets = [only] if only is not None else list(self.subscriptions.values())
        for subscription in targets:
            subscription.queue.append(rendered)
            subscription.wakeup.set()

    def _snapshot_state(self, subscription: _Subscription) -> None:
        for event in self.properties.values():
            self._publish(self._render(event, operation="Initialized"), subscription)
        for index in range(self.faults.initialized_burst):
            burst = FakeEvent(
                "tns1:RuleEngine/FieldDetector/ObjectsInside",
                {"VideoSourceConfigurationToken": "VideoSource_1", "Rule": "Field"},
                {"IsInside": True},
                key={"ObjectId": str(index)},
            )
            self._publish(self._render(burst, operation="Initialized"), subscription)

    # --- HTTP ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving this camera."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/onvif/device_service", self._soap)
        app.router.add_post("/onvif/events_service", self._soap)
        app.router.add_post("/onvif/media_service", self._soap)
        app.router.add_post("/onvif/subscription/{sid}", self._soap)
        app.router.add_get("/onvif/snapshot.jpg", self._snapshot)
        app.router.add_post("/_sim/event", self._sim_event)
        app.router.add_post("/_sim/fault", self._sim_fault)
        app.router.add_post("/_sim/forget", self._sim_forget)
        app.router.add_get("/_sim/stats", self._sim_stats)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.release()

    def base_url(self, *, doubled: bool = False) -> str:
        """``http://host:port`` as the camera advertises itself."""
        port = f"{self.port}:{self.port}" if doubled else str(self.port)
        return f"http://{self.host}:{port}"

    def _count(self, operation: str) -> None:
        self.requests[operation] += 1
        self.request_times.setdefault(operation, deque(maxlen=_TIMES_KEPT)).append(time.monotonic())

    def rate(self, operation: str, window: float) -> int:
        """How many ``operation`` requests arrived in the last ``window`` seconds."""
        since = time.monotonic() - window
        return sum(1 for t in self.request_times.get(operation, ()) if t >= since)

    async def _soap(self, request: web.Request) -> web.StreamResponse:
        payload = await request.read()
        try:
            soap = parse_request(payload)
        except DecodeError as exc:
            return _soap_response(fault("ter:WellFormed", exc.reason), 400)
        self._count(soap.operation)
        self._maybe_forget()
        if self.faults.hang:
            return await self._hang(request)
        refusal = self._authorise(soap)
        if refusal is not None:
            return refusal
        handler = _HANDLERS.get(soap.operation)
        if handler is None:
            return _soap_response(
                fault("ter:ActionNotSupported", f"{soap.operation} is not supported"), 400
            )
        sid = request.match_info.get("sid")
        result = handler(self, soap, sid)
        return await result if asyncio.iscoroutine(result) else result

    def _maybe_forget(self) -> None:
        every = self.faults.forget_every
        if every > 0 and time.monotonic() - self._last_forget >= every:
            self.forget_subscriptions()

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)
        await response.write(envelope("")[:120])
        release = self._release
        with contextlib.suppress(ConnectionError):
            await release.wait()
        return response

    def _authorise(self, soap: SoapRequest) -> web.Response | None:
        if self.faults.html_401 and soap.operation != "GetSystemDateAndTime":
            self.auth_failures += 1
            return web.Response(
                status=401,
                body=_HTML_401,
                content_type="text/html",
                headers={"WWW-Authenticate": f'Digest realm="{_DIGEST_REALM}", qop="auth"'},
            )
        if soap.token is None:
            if soap.operation in PRE_AUTH:
                return None
            self.auth_failures += 1
            return _soap_response(fault("ter:NotAuthorized", "Sender not authorized"), 400)
        reason = self._tokens.check(soap.token, self.now())
        if reason is None:
            return None
        self.auth_failures += 1
        return _soap_response(fault("ter:NotAuthorized", f"Sender not authorized: {reason}"), 400)

    # --- device service --------------------------------------------------------------------

    def _get_system_date_and_time(self, _soap: SoapRequest, _sid: str | None) -> web.Response:
        now = self.now()
        kind = "Manual" if self.faults.clock_skew else "NTP"
        moment = (
            f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time>"
            f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month>"
            f"<tt:Day>{now.day}</tt:Day></tt:Date>"
        )
        return _ok(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            f"<tt:DateTimeType>{kind}</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime>{moment}</tt:UTCDateTime><tt:LocalDateTime>{moment}</tt:LocalDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _get_services(self, _soap: SoapRequest, _sid: str | None) -> web.Response:
        base = self.base_url()
        services = (
            ("http://www.onvif.org/ver10/device/wsdl", "/onvif/device_service"),
            ("http://www.onvif.org/ver10/events/wsdl", "/onvif/events_service"),
            ("http://www.onvif.org/ver10/media/wsdl", "/onvif/media_service"),
        )
        body = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{base}{path}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for ns, path in services
        )
        return _ok(f"<tds:GetServicesResponse>{body}</tds:GetServicesResponse>")

    def _get_capabilities(self, _soap: SoapRequest, _sid: str | None) -> web.Response:
        base = self.base_url()
        return _ok(
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{base}/onvif/device_service</tt:XAddr></tt:Device>"
            f"<tt:Events><tt:XAddr>{base}/onvif/events_service</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
            "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
            f"<tt:Media><tt:XAddr>{base}/onvif/media_service</tt:XAddr></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _get_device_information(self, _soap: SoapRequest, _sid: str | None) -> web.Response:
        return _ok(
            "<tds:GetDeviceInformationResponse>"
            "<tds:Manufacturer>doorwatch</tds:Manufacturer>"
            f"<tds:Model>{escape(self.name)}</tds:Model>"
            "<tds:FirmwareVersion>1.0</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{escape(self.name)}-{self.port}</tds:SerialNumber>"
            "<tds:HardwareId>fake</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )

    # --- events service --------------------------------------------------------------------

    def _get_event_properties(self, _soap: SoapRequest, _sid: str | None) -> web.Response:
        topics = (
            "<tns1:Device><tns1:Trigger><tns1:DigitalInput wstop:topic='true'/>"
            "</tns1:Trigger></tns1:Device>"
            "<tns1:VideoSource><tns1:MotionAlarm wstop:topic='true'/></tns1:VideoSource>"
            "<tns1:RuleEngine><tns1:TamperDetector><tns1:Tamper wstop:topic='true'/>"
            "</tns1:TamperDetector></tns1:RuleEngine>"
        )
        return _ok(
            "<tev:GetEventPropertiesResponse>"
            "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml"
            "</tev:TopicNamespaceLocation><wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>"
            f"<wstop:TopicSet>{topics}</wstop:TopicSet>"
            f"<wsnt:TopicExpressionDialect>{_TOPIC_DIALECT}</wsnt:TopicExpressionDialect>"
            "<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/"
            "ItemFilter</tev:MessageContentFilterDialect>"
            "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
            "</tev:MessageContentSchemaLocation>"
            "</tev:GetEventPropertiesResponse>"
        )

    def _create_pull_point_subscription(self, soap: SoapRequest, _sid: str | None) -> web.Response:
        now = self.now()
        sid = secrets.token_hex(8)
        ends = termination(soap.text("InitialTerminationTime"), now, _DEFAULT_SUBSCRIPTION)
        subscription = _Subscription(sid=sid, terminates=ends)
        self.subscriptions[sid] = subscription
        self.subscriptions_created += 1
        self._snapshot_state(subscription)
        for index in range(self.faults.storm):
            burst = FakeEvent(
                "tns1:RuleEngine/CellMotionDetector/Motion",
                {"VideoSourceConfigurationToken": "VideoSource_1", "Rule": "Motion"},
                {"IsMotion": index % 2 == 0},
                key={"ObjectId": str(index)},
            )
            self._publish(self._render(burst), subscription)
        address = f"{self.base_url(doubled=self.faults.doubled_port)}/onvif/subscription/{sid}"
        return _ok(
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa:Address>{address}</wsa:Address></tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{xml_time(now)}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{xml_time(ends)}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>"
        )

    def _subscription(self, sid: str | None) -> _Subscription | web.Response:
        subscription = self.subscriptions.get(sid or "")
        if subscription is not None and subscription.terminates <= self.now():
            del self.subscriptions[subscription.sid]
            subscription = None
        if subscription is None:
            return _soap_response(
                fault("wsrf-rw:ResourceUnknownFault", "unknown or expired subscription"), 400
            )
        return subscription

    async def _pull_messages(self, soap: SoapRequest, sid: str | None) -> web.Response:
        subscription = self._subscription(sid)
        if isinstance(subscription, web.Response):
            return subscription
        if subscription.pulling:
            return _soap_response(
                fault("ter:InvalidArgVal", "a PullMessages is already waiting"), 400
            )
        timeout = termination(soap.text("Timeout"), datetime.now(UTC), timedelta(seconds=10))
        wait = min(max(0.0, (timeout - datetime.now(UTC)).total_seconds()), _MAX_PULL_WAIT)
        limit = int(soap.text("MessageLimit") or "100")
        subscription.pulling = True
        try:
            if not subscription.queue and not self.faults.instant_empty:
                subscription.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscription.wakeup.wait(), wait)
        finally:
            subscription.pulling = False
        if self.subscriptions.get(subscription.sid) is not subscription:
            return _soap_response(
                fault("wsrf-rw:ResourceUnknownFault", "subscription ended while waiting"), 400
            )
        taken = [subscription.queue.popleft() for _ in range(min(limit, len(subscription.queue)))]
        now = self.now()
        return _ok(
            "<tev:PullMessagesResponse>"
            f"<tev:CurrentTime>{xml_time(now)}</tev:CurrentTime>"
            f"<tev:TerminationTime>{xml_time(subscription.terminates)}</tev:TerminationTime>"
            f"{''.join(taken)}</tev:PullMessagesResponse>"
        )

    def _renew(self, soap: SoapRequest, sid: str | None) -> web.Response:
        subscription = self._subscription(sid)
        if isinstance(subscription, web.Response):
            return subscription
        if self.faults.renew_fails:
            return _soap_response(fault("wsrf-rw:ResourceUnknownFault", "renew refused"), 400)
        now = self.now()
        subscription.terminates = termination(
            soap.text("TerminationTime"), now, _DEFAULT_SUBSCRIPTION
        )
        return _ok(
            f"<wsnt:RenewResponse><wsnt:TerminationTime>{xml_time(subscription.terminates)}"
            f"</wsnt:TerminationTime><wsnt:CurrentTime>{xml_time(now)}</wsnt:CurrentTime>"
            "</wsnt:RenewResponse>"
        )

    def _set_synchronization_point(self, _soap: SoapRequest, sid: str | None) -> web.Response:
        subscription = self._subscription(sid)
        if isinstance(subscription, web.Response):
            return subscription
        self._snapshot_state(subscription)
        return _ok("<tev:SetSynchronizationPointResponse/>")

    def _unsubscribe(self, _soap: SoapRequest, sid: str | None) -> web.Response:
        subscription = self._subscription(sid)
        if isinstance(subscription, web.Response):
            return subscription
        del self.subscriptions[subscription.sid]
        subscription.wakeup.set()
        return _ok("<wsnt:UnsubscribeResponse/>")

    # --- media service ---------------------------------------------------------------------

    def _get_profiles(self, _soap: SoapRequest, _sid: str | None) -> web.Response:
        return _ok(
            "<trt:GetProfilesResponse>"
            '<trt:Profiles token="profile_1" fixed="true"><tt:Name>main</tt:Name>'
            "<tt:VideoEncoderConfiguration token='encoder_1'><tt:Name>main</tt:Name>"
            "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
            "<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution>"
            "<tt:Quality>5</tt:Quality></tt:VideoEncoderConfiguration></trt:Profiles>"
            '<trt:Profiles token="profile_2" fixed="true"><tt:Name>sub</tt:Name></trt:Profiles>'
            "</trt:GetProfilesResponse>"
        )

    def _get_snapshot_uri(self, soap: SoapRequest, _sid: str | None) -> web.Response:
        token = soap.text("ProfileToken")
        if token not in {"profile_1", "profile_2"}:
            return _soap_response(fault("ter:InvalidArgVal", "no such profile"), 400)
        return _ok(
            "<trt:GetSnapshotUriResponse><trt:MediaUri>"
            f"<tt:Uri>{self.base_url()}/onvif/snapshot.jpg?profile={token}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
            "</trt:MediaUri></trt:GetSnapshotUriResponse>"
        )

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        self._count("snapshot")
        if self.faults.hang:
            release = self._release
            await release.wait()
        if self.faults.html_401 or not self._digest_ok(request):
            self.auth_failures += "Authorization" in request.headers
            nonce = secrets.token_hex(16)
            self._digest_nonces.append(nonce)
            return web.Response(
                status=401,
                text="401 Unauthorized",
                headers={
                    "WWW-Authenticate": f'Digest realm="{_DIGEST_REALM}", qop="auth", '
                    f'nonce="{nonce}", algorithm=MD5, opaque="{secrets.token_hex(8)}"'
                },
            )
        body = self._jpeg + b"\0" * self.faults.snapshot_padding
        return web.Response(body=body, content_type="image/jpeg")

    def _digest_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = _digest_fields(header[len("Digest ") :])
        if (
            fields.get("username") != self.username
            or fields.get("nonce") not in self._digest_nonces
        ):
            return False
        ha1 = _md5(f"{self.username}:{_DIGEST_REALM}:{self.password}")
        ha2 = _md5(f"{request.method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            material = (
                f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}"
                f":{fields['qop']}:{ha2}"
            )
        else:
            material = f"{ha1}:{fields['nonce']}:{ha2}"
        return secrets.compare_digest(_md5(material), fields.get("response", ""))

    # --- simulation control ----------------------------------------------------------------

    async def _sim_event(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")  # noqa: TRY004, TRY301 - one 400 path.
            event = FakeEvent.from_json(body)
            count = int(body.get("count", 1))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.emit(event, count=count)
        return web.json_response({"queued": count, "subscriptions": len(self.subscriptions)})

    async def _sim_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")  # noqa: TRY004, TRY301 - one 400 path.
            self.set_faults(**body)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(dataclasses.asdict(self.faults))

    async def _sim_forget(self, _request: web.Request) -> web.Response:
        self.forget_subscriptions()
        return web.json_response({"forgotten": True})

    async def _sim_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def stats(self) -> dict[str, Any]:
        """Requests per operation, auth failures and subscriptions, as JSON."""
        return {
            "requests": dict(self.requests),
            "auth_failures": self.auth_failures,
            "subscriptions": len(self.subscriptions),
            "subscriptions_created": self.subscriptions_created,
            "faults": dataclasses.asdict(self.faults),
        }


def _digest_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in _split_header(text):
        name, _, value = part.partition("=")
        fields[name.strip().lower()] = value.strip().strip('"')
    return fields


def _split_header(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - HTTP Digest (RFC 7616) MD5.


def _ok(body: str) -> web.Response:
    return _soap_response(envelope(body), 200)


def _soap_response(payload: bytes, status: int) -> web.Response:
    return web.Response(body=payload, status=status, headers={"Content-Type": CONTENT_TYPE})


_Handler = Callable[
    [FakeCamera, SoapRequest, str | None], web.Response | Coroutine[Any, Any, web.Response]
]
_HANDLERS: dict[str, _Handler] = {
    "GetSystemDateAndTime": FakeCamera._get_system_date_and_time,  # noqa: SLF001
    "GetServices": FakeCamera._get_services,  # noqa: SLF001
    "GetCapabilities": FakeCamera._get_capabilities,  # noqa: SLF001
    "GetDeviceInformation": FakeCamera._get_device_information,  # noqa: SLF001
    "GetEventProperties": FakeCamera._get_event_properties,  # noqa: SLF001
    "CreatePullPointSubscription": FakeCamera._create_pull_point_subscription,  # noqa: SLF001
    "PullMessages": FakeCamera._pull_messages,  # noqa: SLF001
    "Renew": FakeCamera._renew,  # noqa: SLF001
    "SetSynchronizationPoint": FakeCamera._set_synchronization_point,  # noqa: SLF001
    "Unsubscribe": FakeCamera._unsubscribe,  # noqa: SLF001
    "GetProfiles": FakeCamera._get_profiles,  # noqa: SLF001
    "GetSnapshotUri": FakeCamera._get_snapshot_uri,  # noqa: SLF001
}
