"""The ``doorwatch`` command line; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from doorwatch import __version__, logs
from doorwatch.cli import check, decode, demo, replay, run, simulate, user

# Each module adds its subparser and sets ``handler``; the order here is the order in --help.
COMMANDS = (run, check, decode, replay, demo, simulate, user)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="doorwatch",
        description="Joins door controllers (MQTT) and ONVIF cameras into alerts for "
        "school safety teams.",
    )
    parser.add_argument("--version", action="version", version=f"doorwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Tools log warnings only, and to stderr: stdout is their output (decode, replay).
    logs.configure("warning", "auto")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
