"""``doorwatch decode --format FMT``: one payload on stdin -> canonical events on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from doorwatch.adapters.mqtt.codecs import (
    CODECS,
    ControllerConfig,
    ControllerOptions,
    InboundMessage,
)
from doorwatch.config import Config, load_config
from doorwatch.doors import DoorResolver
from doorwatch.errors import ConfigError, DecodeError
from doorwatch.events import Event, utcnow

# stdin is read up to this; a bigger payload is refused like the daemon refuses it.
_MAX_INPUT = 4 * 1024 * 1024


def add_parser(sub: Any) -> None:
    """Add the ``decode`` subcommand."""
    formats = [*sorted(CODECS), "onvif"]
    parser = sub.add_parser(
        "decode",
        help="decode one payload from stdin into canonical events (JSON lines)",
        description="Formats: " + ", ".join(formats),
    )
    parser.add_argument("--format", required=True, choices=formats, metavar="FMT")
    parser.add_argument("--topic", default=None, help="the MQTT topic the payload came on")
    parser.add_argument("--retained", action="store_true", help="treat as a retained message")
    parser.add_argument("-c", "--config", type=Path, help="map doors and options through a config")
    parser.set_defaults(handler=handle)


def _controller(fmt: str, topic: str, config: Config | None) -> ControllerOptions:
    if config is not None:
        for controller in config.controllers:
            if controller.codec == fmt and any(_matches(f, topic) for f in controller.topics):
                return controller
        for controller in config.controllers:
            if controller.codec == fmt:
                return controller
    try:
        options: ControllerOptions = TypeAdapter(ControllerConfig).validate_python(
            {"id": fmt, "codec": fmt, "topics": ["#"]}
        )
    except ValidationError:
        raise ConfigError(
            f"format {fmt} needs options: pass -c CONFIG with a controller using codec {fmt}"
        ) from None
    return options


def _matches(topic_filter: str, topic: str) -> bool:
    from paho.mqtt.client import topic_matches_sub

    return bool(topic_matches_sub(topic_filter, topic))


def decode_payload(
    fmt: str, payload: bytes, *, topic: str | None, retained: bool, config: Config | None
) -> list[Event]:
    """Decode like the daemon would (door mapping included when a config is given)."""
    if fmt == "onvif":
        from doorwatch.adapters.onvif.normalise import decode_envelope

        camera = config.cameras[0] if config and config.cameras else None
        events: list[Event] = decode_envelope(
            payload, source=camera.id if camera else "onvif", received_at=utcnow()
        )
        if camera is not None and config is not None:
            from doorwatch.adapters.onvif.camera import site_events

            resolver = DoorResolver(camera.id, camera.inputs, [d.id for d in config.doors])
            events = site_events(events, camera, resolver)
        return events
    topic = topic or "decode"
    controller = _controller(fmt, topic, config)
    codec = CODECS[fmt](controller)
    events = codec.decode(
        InboundMessage(topic=topic, payload=payload, retained=retained, received_at=utcnow())
    )
    if config is not None:
        resolver = DoorResolver(controller.id, controller.doors, [d.id for d in config.doors])
        events = [resolver.resolve(e) for e in events]
    return events


def handle(args: argparse.Namespace) -> int:
    """Print one JSON object per event; on bad input print one line and exit 2."""
    config = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)  # noqa: T201
            return 1
    payload = sys.stdin.buffer.read(_MAX_INPUT + 1)
    if len(payload) > _MAX_INPUT:
        print(f"decode: input larger than {_MAX_INPUT} bytes", file=sys.stderr)  # noqa: T201
        return 2
    try:
        events = decode_payload(
            args.format, payload, topic=args.topic, retained=args.retained, config=config
        )
    except DecodeError as exc:
        print(f"decode: {exc.kind}: {exc.reason}", file=sys.stderr)  # noqa: T201
        return 2
    except ConfigError as exc:
        print(f"decode: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    out = sys.stdout.buffer
    for event in events:
        out.write(orjson.dumps(event.to_json()) + b"\n")
    out.flush()
    return 0
