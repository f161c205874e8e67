"""``doorwatch simulate controller``: publish realistic door-controller traffic to a broker.

For integration testing on a real site's broker before the doors are wired: the messages are
exactly what uhppoted-mqtt, esp-rfid or zigbee2mqtt publish (see
:mod:`doorwatch.adapters.mqtt.simulator` for the scenario file format).
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def add_parser(targets: Any) -> None:
    """Add ``simulate controller``."""
    parser = targets.add_parser(
        "controller",
        help="publish uhppoted, esp-rfid or zigbee2mqtt traffic to an MQTT broker",
        description="Play a scenario (YAML, see the README) as a door controller would publish "
        "it. Without --scenario, a built-in school-day scenario for the format loops.",
    )
    parser.add_argument(
        "--format", required=True, choices=("uhppoted", "esp-rfid", "zigbee2mqtt"), dest="fmt"
    )
    parser.add_argument(
        "--broker", required=True, help="mqtt://host[:port] or mqtts://host[:port] (TLS)"
    )
    parser.add_argument("--scenario", type=Path, default=None, help="scenario file (YAML)")
    parser.add_argument("--username", default=None, help="broker user")
    parser.add_argument(
        "--password-file", type=Path, default=None, help="file holding the broker password"
    )
    parser.add_argument("--cafile", type=Path, default=None, help="CA bundle for mqtts://")
    parser.add_argument(
        "--prefix",
        default=None,
        help="topic root: uhppoted 'uhppoted/gateway', zigbee2mqtt 'zigbee2mqtt', "
        "esp-rfid 'esp-rfid' (the defaults)",
    )
    parser.add_argument(
        "--passes", type=int, default=None, help="play a repeating scenario this many times"
    )
    parser.set_defaults(handler=handle)


def default_scenario(fmt: str) -> Any:
    """The built-in scenario for a format: the demo's school day."""
    from doorwatch.adapters.mqtt.simulator import Scenario, Step
    from doorwatch.demo.site import uhppoted_day, zigbee_day

    if fmt == "uhppoted":
        return uhppoted_day()
    if fmt == "zigbee2mqtt":
        return zigbee_day()
    door = "esprfid-gym"
    return Scenario(
        repeat=True,
        period=60,
        steps=[
            Step(at=0, action="heartbeat", device=door),
            Step(at=1, action="swipe", door=door, card=0x7C8A21, name="Ann Lee"),
            Step(at=2, action="open", door=door),
            Step(at=6, action="close", door=door),
            Step(at=10, action="deny", door=door, card=0x51F0),
            Step(at=20, action="forced", door=door),
        ],
    )


def handle(args: argparse.Namespace) -> int:
    """Connect, play, disconnect; Ctrl-C stops."""
    from doorwatch.adapters.mqtt.simulator import check_scenario, load_scenario
    from doorwatch.config.secrets import read_secret
    from doorwatch.errors import ConfigError

    try:
        scenario = load_scenario(args.scenario) if args.scenario else default_scenario(args.fmt)
        check_scenario(scenario, args.fmt)
        password = (
            read_secret(args.password_file, key_path="--password-file")
            if args.password_file
            else None
        )
        scheme, host, port = _broker(args.broker)
    except (ConfigError, ValueError) as exc:
        print(f"simulate controller: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    client = _connect(args, scheme, host, port, password)
    if client is None:
        return 1
    try:
        return _play(client, scenario, args)
    finally:
        client.loop_stop()
        client.disconnect()


def _broker(text: str) -> tuple[str, str, int | None]:
    from doorwatch.errors import ConfigError

    url = urlsplit(text)
    if url.scheme not in _DEFAULT_PORTS or not url.hostname:
        raise ConfigError(f"--broker {text!r}: use mqtt://host[:port] or mqtts://host[:port]")
    return url.scheme, url.hostname, url.port


def _connect(
    args: argparse.Namespace, scheme: str, host: str, port: int | None, password: str | None
) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"doorwatch-sim-{args.fmt}-{uuid.uuid4().hex[:6]}"
    )
    if args.username:
        client.username_pw_set(args.username, password)
    if scheme == "mqtts":
        context = ssl.create_default_context(cafile=str(args.cafile) if args.cafile else None)
        client.tls_set_context(context)
    connected = threading.Event()
    client.on_connect = lambda _c, _u, _f, reason, _p: (
        connected.set() if not reason.is_failure else None
    )
    try:
        client.connect(host, port or _DEFAULT_PORTS[scheme])
    except (OSError, ssl.SSLError) as exc:
        print(f"simulate controller: cannot reach {host}: {exc}", file=sys.stderr)  # noqa: T201
        return None
    client.loop_start()
    if not connected.wait(10):
        print("simulate controller: the broker refused the connection", file=sys.stderr)  # noqa: T201
        client.loop_stop()
        return None
    return client


def _play(client: Any, scenario: Any, args: argparse.Namespace) -> int:
    from doorwatch.adapters.mqtt.simulator import FORMATS, schedule

    renderer = FORMATS[args.fmt](args.prefix) if args.prefix else FORMATS[args.fmt]()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_args: stop.set())
    start = time.monotonic()
    published = 0
    print(f"simulating {args.fmt} on {args.broker}; Ctrl-C to stop", flush=True)  # noqa: T201
    for due, step in schedule(scenario, start=start, passes=args.passes):
        if stop.wait(max(0.0, due - time.monotonic())):
            break
        for message in renderer.render(step, datetime.now().astimezone()):
            info = client.publish(message.topic, message.payload, qos=1, retain=message.retain)
            info.wait_for_publish(10)  # QoS 1: 'published' means the broker has it.
            published += 1
        where = step.door or step.device or ""
        print(f"{due - start:7.1f}s {step.action:<9} {where}", flush=True)  # noqa: T201
    print(f"published {published} message(s)", flush=True)  # noqa: T201
    return 0
