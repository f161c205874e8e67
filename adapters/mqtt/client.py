"""The daemon's one MQTT connection: paho-mqtt driven from the asyncio loop, acks by hand.

paho does the protocol; asyncio does the I/O through ``add_reader``/``add_writer`` on paho's
socket, so no network thread exists and every callback runs on the loop. Messages are
acknowledged only when the application says so (after its journal commit), in arrival order,
and a persistent session makes the broker keep what arrives while doorwatch is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from doorwatch.events import utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One received PUBLISH, with what is needed to acknowledge it later."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    # Which connection delivered it: an ack for an older connection must not be sent on a
    # newer one, where the same packet id may mean another message.
    generation: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Everything the connection needs, resolved (secrets read, ids chosen)."""

    host: str
    port: int
    client_id: str
    keepalive: int
    session_expiry: int
    receive_maximum: int
    subscriptions: tuple[str, ...]
    status_topic: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    reconnect_max: float = 30.0
    # "5" (the default: session expiry, receive maximum, reason codes) or "3.1.1" for brokers
    # that speak nothing newer (the embedded demo broker, old site brokers).
    protocol: str = "5"


class MqttError(Exception):
    """The broker refused or dropped something we asked for."""


# Reconnect delays start here and double up to reconnect_max, with full jitter, so that a
# restarted broker is not hit by every client at the same instant.
_RECONNECT_BASE = 0.5
# paho keeps its keepalive and timeout bookkeeping in loop_misc; once a second is plenty.
_MISC_INTERVAL = 1.0
# A connection that stayed up this long was healthy: the next failure starts backoff afresh.
_HEALTHY_AFTER = 30.0
_CONNECT_TIMEOUT = 15.0
# Packets read per readable event at most (see _read).
_READ_BURST = 64


def _quick_ack(sock: Any) -> None:
    """Acknowledge the broker's segments at once instead of after Linux's delayed-ACK timer.

    A broker with Nagle on (mosquitto's default, ``set_tcp_nodelay false``) holds its next
    packet until our ACK of the previous one arrives; with delayed ACKs that adds up to 40 ms
    to a lone door alarm. The flag does not stick, so it is set before every read.
    """
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


# Linux's TCP_QUICKACK (12); harmlessly refused elsewhere.
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)


class MqttClient:
    """A persistent-session MQTT client with manual, in-order acknowledgements."""

    def __init__(
        self,
        settings: MqttSettings,
        on_message: Callable[[MqttMessage], None],
        *,
        on_connection_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_message = on_message
        self._on_connection_change = on_connection_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paho: paho.Client | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._disconnected: asyncio.Future[str] | None = None
        self._pending_publishes: dict[int, asyncio.Future[None]] = {}
        self._loop_thread = threading.get_ident()

    @property
    def connected(self) -> bool:
        """True while a session is established (CONNACK success received)."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Wait until the client is connected."""
        await self._connected.wait()

    # ----- running -----

    async def run(self) -> None:
        """Connect, and reconnect with backoff, until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        attempt = 0
        misc = asyncio.create_task(self._misc_loop(), name="mqtt.misc")
        try:
            while True:
                started = self._loop.time()
                try:
                    reason = await self._connect_and_wait()
                    log.warning("mqtt disconnected", reason=reason)
                except (OSError, MqttError, ssl.SSLError, TimeoutError) as exc:
                    log.warning(
                        "mqtt connect failed",
                        host=self.settings.host,
                        port=self.settings.port,
                        error=str(exc) or exc.__class__.__name__,
                    )
                finally:
                    self._mark_disconnected()
                if self._loop.time() - started > _HEALTHY_AFTER:
                    attempt = 0
                delay = random.uniform(  # noqa: S311 - jitter, not cryptography
                    0, min(self.settings.reconnect_max, _RECONNECT_BASE * 2**attempt)
                )
                attempt += 1
                log.info("mqtt reconnecting", delay_s=round(delay, 2), attempt=attempt)
                await asyncio.sleep(delay)
        finally:
            misc.cancel()
            await asyncio.gather(misc, return_exceptions=True)
            self._teardown()

    async def _connect_and_wait(self) -> str:
        """Open one connection and return the reason when it ends."""
        assert self._loop is not None
        self._teardown()
        client = self._make_client()
        self._paho = client
        self._generation += 1
        self._disconnected = self._loop.create_future()
        v5 = self.settings.protocol == "5"
        properties: Properties | None = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.settings.session_expiry
            properties.ReceiveMaximum = self.settings.receive_maximum
        # MQTT 5 keeps the session with clean_start=False plus an expiry; 3.1.1 with
        # clean_session=False, set on the client. Either way the broker queues for us.
        session: dict[str, Any] = {"clean_start": False, "properties": properties} if v5 else {}
        # connect() blocks on TCP and TLS handshakes; keep it off the loop. paho calls our
        # socket callbacks from that thread; they hop back onto the loop (see _on_loop).
        await asyncio.wait_for(
            self._loop.run_in_executor(
                None,
                lambda: client.connect(
                    self.settings.host,
                    self.settings.port,
                    keepalive=self.settings.keepalive,
                    **session,
                ),
            ),
            timeout=_CONNECT_TIMEOUT,
        )
        return await self._disconnected

    def _make_client(self) -> paho.Client:
        s = self.settings
        v5 = s.protocol == "5"
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        client.suppress_exceptions = False
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            context = ssl.create_default_context(cafile=s.ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if s.cert_file and s.key_file:
                context.load_cert_chain(s.cert_file, s.key_file)
            client.tls_set_context(context)
        client.will_set(s.status_topic, b"offline", qos=1, retain=True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._socket_register_write
        client.on_socket_unregister_write = self._socket_unregister_write
        return client

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(_MISC_INTERVAL)
            client = self._paho
            if client is not None and client.socket() is not None:
                rc = client.loop_misc()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._resolve_disconnect(f"keepalive: {paho.error_string(rc)}")

    def _teardown(self) -> None:
        client, self._paho = self._paho, None
        if client is not None:
            sock = client.socket()
            if sock is not None and self._loop is not None:
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)
            # Without socket callbacks paho writes the DISCONNECT itself, right away.
            client.on_socket_open = None
            client.on_socket_close = None
            client.on_socket_register_write = None
            client.on_socket_unregister_write = None
            client.on_disconnect = None
            with contextlib.suppress(OSError, ValueError):
                client.disconnect()
            client._sock_close()  # noqa: SLF001 - paho leaves closing to its own loop.
        for future in self._pending_publishes.values():
            if not future.done():
                future.set_exception(MqttError("connection lost before PUBACK"))
        self._pending_publishes.clear()

    def _mark_disconnected(self) -> None:
        if self._connected.is_set():
            self._connected.clear()
            if self._on_connection_change is not None:
                self._on_connection_change(False)  # noqa: FBT003

    def _resolve_disconnect(self, reason: str) -> None:
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(reason)

    # ----- paho callbacks (all on the loop thread) -----

    def _on_loop(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop: now when called from it, else as soon as the loop can."""
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def _socket_open(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        # paho leaves Nagle on: a PUBACK would then wait for the broker's delayed ACK of the
        # previous one (up to 40 ms) when traffic is light, which is exactly when a door alarm
        # arrives alone.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def add() -> None:
            if self._paho is client and self._loop is not None:
                self._loop.add_reader(sock, self._read, client, sock)

        self._on_loop(add)

    def _read(self, client: paho.Client, sock: Any) -> None:
        # paho reads one packet per call. Under a burst, reading the next ones here (while the
        # kernel has bytes for us) saves a trip round the event loop per message; the bound
        # lets acks, writes and timers in between.
        fd: int = sock.fileno()
        _quick_ack(sock)
        for _ in range(_READ_BURST):
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._resolve_disconnect(paho.error_string(rc))
                return
            if self._paho is not client or client.socket() is not sock:
                return
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                continue
            try:
                readable, _, _ = select.select((fd,), (), (), 0)
            except (OSError, ValueError):
                return  # Closed under us; the disconnect path deals with it.
            if not readable:
                return
        # TLS may hold decrypted bytes the kernel no longer reports as readable.
        if isinstance(sock, ssl.SSLSocket) and sock.pending() and self._loop is not None:
            self._loop.call_soon(self._read, client, sock)

    def _socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        def remove() -> None:
            if self._loop is not None:
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)

        self._on_loop(remove)

    def _socket_register_write(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        def add() -> None:
            if self._paho is client and self._loop is not None:
                self._loop.add_writer(sock, self._write, client)

        self._on_loop(add)

    def _write(self, client: paho.Client) -> None:
        rc = client.loop_write()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._resolve_disconnect(paho.error_string(rc))

    def _socket_unregister_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        def remove() -> None:
            if self._loop is not None:
                self._loop.remove_writer(sock)

        self._on_loop(remove)

    def _handle_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._resolve_disconnect(f"refused: {reason}")
            return
        session_present = bool(getattr(flags, "session_present", False))
        log.info(
            "mqtt connected",
            host=self.settings.host,
            port=self.settings.port,
            client_id=self.settings.client_id,
            session_present=session_present,
        )
        # Subscribing on every connect keeps subscriptions even if the broker lost the session.
        # Retained messages only on a new subscription: with a kept session they were seen.
        if self.settings.subscriptions:
            if self.settings.protocol == "5":
                options = SubscribeOptions(
                    qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
                )
                client.subscribe([(topic, options) for topic in self.settings.subscriptions])
            else:
                client.subscribe([(topic, 1) for topic in self.settings.subscriptions])
        client.publish(self.settings.status_topic, b"online", qos=1, retain=True)
        self._connected.set()
        if self._on_connection_change is not None:
            self._on_connection_change(True)  # noqa: FBT003

    def _handle_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [
            topic
            for topic, reason in zip(self.settings.subscriptions, reasons, strict=False)
            if reason.is_failure
        ]
        if refused:
            log.error("mqtt subscription refused by broker (check its ACL)", topics=refused)

    def _handle_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._resolve_disconnect(str(reason))

    def _handle_message(
        self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage
    ) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            # The broker should have refused it; ack so it is not redelivered for ever.
            log.warning("mqtt message with a non-UTF-8 topic dropped")
            if self._paho is not None and message.qos:
                self._paho.ack(message.mid, message.qos)
            return
        self._on_message(
            MqttMessage(
                topic=topic,
                payload=bytes(message.payload),
                qos=message.qos,
                retain=bool(message.retain),
                mid=message.mid,
                generation=self._generation,
                received_at=utcnow(),
            )
        )

    def _handle_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        future = self._pending_publishes.pop(mid, None)
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(MqttError(f"publish refused: {reason}"))
        else:
            future.set_result(None)

    # ----- what the application calls -----

    def ack(self, message: MqttMessage) -> bool:
        """Acknowledge a message; call in arrival order, after it is stored.

        Returns False when the connection that delivered it is gone: the broker will send it
        again on the new connection, and the journal will recognise it.
        """
        if message.qos == 0:
            return True
        client = self._paho
        if client is None or message.generation != self._generation or not self.connected:
            return False
        client.ack(message.mid, message.qos)
        return True

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        wait: float = 10.0,
    ) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1); raise MqttError on refusal."""
        client = self._paho
        if client is None or not self.connected:
            raise MqttError("not connected")
        assert self._loop is not None
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"publish failed: {paho.error_string(info.rc)}")
        if qos == 0:
            return
        future = self._loop.create_future()
        if info.is_published():
            return
        self._pending_publishes[info.mid] = future
        await asyncio.wait_for(future, wait)

    async def close(self) -> None:
        """Say goodbye: publish ``offline`` (a clean disconnect sends no will) and disconnect."""
        if self._paho is not None and self.connected:
            with contextlib.suppress(MqttError, TimeoutError):
                await self.publish(
                    self.settings.status_topic, b"offline", qos=1, retain=True, wait=2.0
                )
        self._teardown()
        self._mark_disconnected()
