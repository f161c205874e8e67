"""``doorwatch simulate camera|controller ...``: the simulators, runnable on their own.

``simulate camera`` serves fake ONVIF cameras (see ``doorwatch.adapters.onvif.fake``) on
consecutive ports of one process, with fault switches, scripted events and an HTTP control
API (``POST /_sim/event``, ``POST /_sim/fault``, ``POST /_sim/forget``, ``GET /_sim/stats``).
Each simulator adds its own sub-subcommand to :data:`TARGETS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from doorwatch.cli import simulate_controller

# camera fault spelling on the command line -> Faults field, and the value a bare flag sets.
_FAULTS: dict[str, tuple[str, float | bool]] = {
    "renew-fails": ("renew_fails", True),
    "forget": ("forget_every", 30.0),
    "instant-empty": ("instant_empty", True),
    "state-one": ("numeric_bools", True),
    "initialized-burst": ("initialized_burst", 50),
    "storm": ("storm", 250),
    "html-401": ("html_401", True),
    "clock-skew": ("clock_skew", 30.0),
    "hang": ("hang", True),
    "doubled-port": ("doubled_port", True),
}


def add_parser(sub: Any) -> None:
    """Add the ``simulate`` subcommand and its simulators."""
    parser = sub.add_parser(
        "simulate",
        help="run simulated cameras or door controllers for integration testing",
        description="Simulators the demo uses, runnable on their own.",
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for add in TARGETS:
        add(targets)


def _add_camera(targets: Any) -> None:
    parser = targets.add_parser(
        "camera",
        help="fake ONVIF cameras (device, events, media, snapshot) with fault switches",
        description="Serve fake ONVIF cameras on PORT, PORT+1, ... Faults: "
        + ", ".join(f"{name}[=VALUE]" for name in _FAULTS)
        + ". Control at runtime: POST /_sim/event {topic, source, data, operation, count}, "
        "POST /_sim/fault {field: value}, POST /_sim/forget, GET /_sim/stats.",
    )
    parser.add_argument("--port", type=int, required=True, help="port of the first camera")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--count", type=int, default=1, help="cameras on consecutive ports")
    parser.add_argument("--username", default="admin", help="the cameras' ONVIF user")
    parser.add_argument(
        "--password-file", type=Path, default=None, help="file holding the password (default admin)"
    )
    parser.add_argument(
        "--inputs", default="AlarmIn_1", help="comma-separated digital input tokens"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="switch a fault on for every camera (repeatable)",
    )
    parser.add_argument("--events", type=Path, default=None, help="YAML event script")
    parser.set_defaults(handler=handle_camera)


# Each simulator registers its sub-subcommand here.
TARGETS: tuple[Callable[[Any], None], ...] = (_add_camera, simulate_controller.add_parser)


def parse_faults(specs: list[str]) -> dict[str, Any]:
    """``["storm=300", "hang"]`` -> Faults field values; ValueError names a bad spec."""
    from doorwatch.adapters.onvif.fake import Faults

    types = {f.name: f.type for f in fields(Faults)}
    values: dict[str, Any] = {}
    for spec in specs:
        name, has_value, raw = spec.partition("=")
        if name not in _FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(_FAULTS)}")
        field_name, default = _FAULTS[name]
        kind = types[field_name]
        if not has_value:
            values[field_name] = default
        elif kind in {"bool", bool}:
            values[field_name] = raw.strip().lower() in {"1", "true", "on", "yes"}
        elif kind in {"int", int}:
            values[field_name] = int(raw)
        else:
            values[field_name] = float(raw)
    return values


def handle_camera(args: argparse.Namespace) -> int:
    """Serve the cameras until SIGTERM or Ctrl-C."""
    from doorwatch.adapters.onvif.fake import FakeCameraServer, Faults, make_cameras
    from doorwatch.adapters.onvif.fake.script import load_script
    from doorwatch.config.secrets import read_secret
    from doorwatch.errors import ConfigError

    try:
        faults = Faults(**parse_faults(args.fault))
        script = load_script(args.events) if args.events else None
        password = (
            read_secret(args.password_file, key_path="--password-file")
            if args.password_file
            else "admin"
        )
    except (ValueError, ConfigError) as exc:
        print(f"simulate camera: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.count < 1:
        print("simulate camera: --count must be at least 1", file=sys.stderr)  # noqa: T201
        return 2
    cameras = make_cameras(
        args.count,
        args.port,
        host=args.host,
        username=args.username,
        password=password,
        inputs=tuple(t.strip() for t in args.inputs.split(",") if t.strip()),
        faults=faults,
    )
    server = FakeCameraServer(cameras, host=args.host)
    return asyncio.run(_serve(server, script))


async def _serve(server: Any, script: Any) -> int:
    from doorwatch.adapters.onvif.fake.script import play

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except OSError as exc:
        print(f"simulate camera: cannot listen: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for index, camera in enumerate(server.cameras, start=1):
        print(  # noqa: T201
            f"camera {index}: {camera.base_url()}/onvif/device_service", flush=True
        )
    print(f"simulating {len(server.cameras)} camera(s); Ctrl-C to stop", flush=True)  # noqa: T201
    player = asyncio.create_task(play(script, server.cameras)) if script else None
    try:
        await stop.wait()
    finally:
        if player is not None:
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player
        await server.stop()
    return 0
