"""``doorwatch replay FILE -c CONFIG``: run a JSON-lines event log through the rules.

Each line is a canonical event (as ``doorwatch decode`` prints it); only ``kind`` and
``received_at`` are required: ``source`` defaults to ``replay`` and ``dedupe_key`` to
``replay:<line number>``. The rules run on a virtual clock that starts at the first event,
moves to each event's ``received_at`` (firing due timers on the way; it never goes back, so an
out-of-order line is handled at the time already reached) and runs on afterwards (``--run-on``,
default 1 h) so pending timers fire. Each alert transition is printed as one JSON object.
Nothing is stored and nobody is notified.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from doorwatch.config import load_config
from doorwatch.config.base import DURATION_HINT, Duration
from doorwatch.errors import ConfigError
from doorwatch.events import Event

# One hour lets every held-open, pre-alarm and burst window of a normal config run out.
DEFAULT_RUN_ON = 3600.0

_EVENT_FIELDS = frozenset(
    {
        "kind",
        "source",
        "device",
        "door",
        "door_ref",
        "camera",
        "credential",
        "holder",
        "direction",
        "reason",
        "device_time",
        "received_at",
        "replayed",
        "dedupe_key",
    }
)
_DURATION: TypeAdapter[float] = TypeAdapter(Duration)


class BadLine(Exception):  # noqa: N818 - a reason to stop, read by the handler only.
    """A line of the replay file that is not an event."""


def add_parser(sub: Any) -> None:
    """Add the ``replay`` subcommand."""
    parser = sub.add_parser(
        "replay",
        help="run a JSON-lines event log through the configured rules on a virtual clock",
        description="Prints one JSON object per alert transition.",
    )
    parser.add_argument("file", type=Path, help="JSON lines of canonical events ('-' for stdin)")
    parser.add_argument("-c", "--config", type=Path, required=True, help="the YAML config file")
    parser.add_argument(
        "--run-on",
        default=DEFAULT_RUN_ON,
        metavar="DURATION",
        help="how long the clock runs on after the last event (default 1h)",
    )
    parser.set_defaults(handler=handle)


def _object(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise BadLine(f"expected a JSON object, got {type(data).__name__}")
    return data


def _check_fields(data: dict[str, Any]) -> None:
    unknown = sorted(set(data) - _EVENT_FIELDS)
    if unknown:
        raise BadLine(f"unknown field {unknown[0]!r}")
    for required in ("kind", "received_at"):
        if data.get(required) is None:
            raise BadLine(f"missing {required!r}")
    for name, value in data.items():
        if name == "replayed":
            if not isinstance(value, bool):
                raise BadLine("field 'replayed' must be true or false")
        elif value is not None and not isinstance(value, str):
            raise BadLine(f"field {name!r} must be a string")


def parse_line(text: str, number: int) -> Event:
    """Turn one line into an event, filling the defaults; raise BadLine with the reason."""
    data = _object(text)
    _check_fields(data)
    if data.get("source") is None:
        data["source"] = "replay"
    if data.get("dedupe_key") is None:
        data["dedupe_key"] = f"replay:{number}"
    try:
        return Event.from_json(data)
    except ValueError as exc:
        raise BadLine(_reason(exc, data)) from None


def _reason(exc: ValueError, data: dict[str, Any]) -> str:
    text = str(exc)
    if "EventKind" in text:
        return f"unknown kind {data['kind']!r}"
    if "Direction" in text:
        return f"direction {data.get('direction')!r} is not 'in' or 'out'"
    return f"bad timestamp ({text})"


def read_events(lines: Iterable[str]) -> list[Event]:
    """Parse every non-blank line; raise BadLine naming the first bad line's number."""
    events: list[Event] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            events.append(parse_line(text, number))
        except BadLine as exc:
            raise BadLine(f"line {number}: {exc}") from None
    return events


def _read_file(path: Path) -> list[Event]:
    try:
        if str(path) == "-":
            events = read_events(sys.stdin)
        else:
            with path.open(encoding="utf-8") as lines:
                events = read_events(lines)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadLine(f"cannot read it ({exc})") from None
    if not events:
        raise BadLine("no events")
    return events


def handle(args: argparse.Namespace) -> int:
    """Replay the file and print the transitions; exit 1 on a config error, 2 on bad input."""
    from doorwatch.rules.loader import RuleLoadError
    from doorwatch.rules.offline import OfflineRules

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201
        return 1
    try:
        run_on = _DURATION.validate_python(args.run_on)
    except ValidationError:
        print(f"replay: --run-on {args.run_on!r}: {DURATION_HINT}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        events = _read_file(args.file)
    except BadLine as exc:
        print(f"replay: {args.file}: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        rules = OfflineRules(config, start=events[0].received_at)
    except RuleLoadError as exc:
        print("\n".join(f"{args.config}: {p}" for p in exc.problems), file=sys.stderr)  # noqa: T201
        return 1
    out = sys.stdout.buffer
    for event in events:
        for transition in rules.feed(event):
            out.write(orjson.dumps(transition.to_json()) + b"\n")
    for transition in rules.advance(run_on):
        out.write(orjson.dumps(transition.to_json()) + b"\n")
    out.flush()
    return 0
