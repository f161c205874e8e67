"""MQTT ingest: route each message to its controllers' codecs, journal, then acknowledge."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from paho.mqtt.client import topic_matches_sub

from doorwatch.adapters.mqtt.client import MqttClient, MqttMessage
from doorwatch.adapters.mqtt.codecs import CODECS, Codec, ControllerOptions, InboundMessage
from doorwatch.doors import DoorResolver
from doorwatch.errors import DecodeError
from doorwatch.events import Event
from doorwatch.journal import DeadLetter
from doorwatch.metrics import Metrics
from doorwatch.pipeline import Pipeline

log = structlog.get_logger(__name__)

# The same kind of failure from the same source is logged at most this often; the metric
# counts every one. A broken publisher must not flood the journal of the host.
_FAILURE_LOG_INTERVAL = 60.0


@dataclass(slots=True)
class ControllerRoute:
    """One configured controller: its topic filters, codec and door mapping."""

    options: ControllerOptions
    codec: Codec[ControllerOptions]
    resolver: DoorResolver

    def matches(self, topic: str) -> bool:
        """Whether one of this controller's filters matches the topic."""
        return any(topic_matches_sub(f, topic) for f in self.options.topics)


@dataclass(slots=True)
class _FailureLog:
    last: float = 0.0
    suppressed: int = 0


@dataclass(slots=True)
class _Batch:
    messages: list[MqttMessage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def build_routes(
    controllers: Sequence[ControllerOptions], site_doors: Sequence[str], metrics: Metrics | None
) -> list[ControllerRoute]:
    """Instantiate each controller's codec and door resolver."""
    return [
        ControllerRoute(
            options=options,
            codec=CODECS[options.codec](options),
            resolver=DoorResolver(options.id, options.doors, site_doors, metrics),
        )
        for options in controllers
    ]


class MqttIngest:
    """Consumes messages in arrival order, in batches that end with one commit and the acks."""

    def __init__(
        self,
        routes: list[ControllerRoute],
        pipeline: Pipeline,
        metrics: Metrics,
        *,
        max_payload_bytes: int,
        max_batch: int = 500,
    ) -> None:
        self.routes = routes
        self.pipeline = pipeline
        self.metrics = metrics
        self.max_payload_bytes = max_payload_bytes
        self.max_batch = max_batch
        self.client: MqttClient | None = None
        self._queue: asyncio.Queue[MqttMessage] = asyncio.Queue()
        self._route_cache: dict[str, list[ControllerRoute]] = {}
        self._failures: dict[tuple[str, str], _FailureLog] = {}
        self.last_progress = time.monotonic()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """Every topic filter of every controller, without repeats, in config order."""
        return tuple(dict.fromkeys(t for r in self.routes for t in r.options.topics))

    def enqueue(self, message: MqttMessage) -> None:
        """Called by the MQTT client for each message, on the loop, in arrival order."""
        self._queue.put_nowait(message)
        self.metrics.queue_depth.set(self._queue.qsize())

    @property
    def queue_depth(self) -> int:
        """Messages received and not yet journaled."""
        return self._queue.qsize()

    async def run(self, client: MqttClient) -> None:
        """Process messages until cancelled."""
        self.client = client
        while True:
            batch = _Batch(messages=[await self._queue.get()])
            while len(batch.messages) < self.max_batch and not self._queue.empty():
                batch.messages.append(self._queue.get_nowait())
            self.metrics.queue_depth.set(self._queue.qsize())
            self.metrics.mqtt_messages.inc(len(batch.messages))
            for message in batch.messages:
                self._decode(message, batch)
            await self.pipeline.submit(
                batch.events, batch.dead, after_commit=functools.partial(self._ack, batch)
            )
            self.last_progress = time.monotonic()

    def _ack(self, batch: _Batch) -> None:
        assert self.client is not None
        for message in batch.messages:
            self.client.ack(message)

    def _routes_for(self, topic: str) -> list[ControllerRoute]:
        routes = self._route_cache.get(topic)
        if routes is None:
            routes = [r for r in self.routes if r.matches(topic)]
            # Topic names are few on a site (one per device); the cache stays small, but a
            # publisher spraying random topics must not grow it without bound.
            if len(self._route_cache) < 10_000:  # noqa: PLR2004
                self._route_cache[topic] = routes
        return routes

    def decode(self, message: MqttMessage) -> tuple[list[Event], list[DeadLetter]]:
        """Decode one message into events and dead letters (used by tests and tools too)."""
        batch = _Batch()
        self.metrics.mqtt_messages.inc()
        self._decode(message, batch)
        return batch.events, batch.dead

    def _decode(self, message: MqttMessage, batch: _Batch) -> None:
        routes = self._routes_for(message.topic)
        if not routes:
            # A persistent session can deliver messages for filters an older config had.
            self._dead(
                batch,
                message,
                None,
                DecodeError("no controller subscribes to this topic", kind="unknown_topic"),
            )
            return
        if len(message.payload) > self.max_payload_bytes:
            self._dead(
                batch,
                message,
                routes[0].options.id,
                DecodeError(
                    f"payload of {len(message.payload)} bytes exceeds max_payload_bytes "
                    f"({self.max_payload_bytes})",
                    kind="too_large",
                ),
            )
            return
        inbound = InboundMessage(
            topic=message.topic,
            payload=message.payload,
            retained=message.retain,
            received_at=message.received_at,
        )
        for route in routes:
            try:
                events = route.codec.decode(inbound)
            except DecodeError as exc:
                self._dead(batch, message, route.options.id, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a codec bug must not stop ingest.
                self._dead(
                    batch,
                    message,
                    route.options.id,
                    DecodeError(
                        f"codec error {exc.__class__.__name__}: {exc}"[:200], kind="codec_error"
                    ),
                )
                continue
            batch.events.extend(route.resolver.resolve(event) for event in events)

    def _dead(
        self, batch: _Batch, message: MqttMessage, source: str | None, exc: DecodeError
    ) -> None:
        label = source or "-"
        self.metrics.decode_failures.labels(label, exc.kind).inc()
        batch.dead.append(
            DeadLetter(
                received_at=message.received_at,
                source=source,
                topic=message.topic,
                kind=exc.kind,
                reason=exc.reason,
                payload=message.payload,
            )
        )
        entry = self._failures.setdefault((label, exc.kind), _FailureLog())
        now = time.monotonic()
        if entry.last and now - entry.last < _FAILURE_LOG_INTERVAL:
            entry.suppressed += 1
            return
        log.warning(
            "message dead-lettered",
            source=source,
            topic=message.topic[:200],
            reason=exc.kind,
            detail=exc.reason,
            size=len(message.payload),
            similar_suppressed=entry.suppressed,
        )
        entry.last, entry.suppressed = now, 0
