"""``doorwatch run -c FILE``: the daemon, in the foreground (systemd runs this)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import sys
from pathlib import Path
from typing import Any

import structlog

from doorwatch import logs
from doorwatch.config import load_config
from doorwatch.errors import ConfigError, StorageError


def add_parser(sub: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = sub.add_parser("run", help="run the daemon in the foreground")
    parser.add_argument("-c", "--config", type=Path, required=True, help="the YAML config file")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Load the config and run until SIGTERM/SIGINT."""
    from doorwatch import app

    # A watchdog SIGABRT then leaves every thread's traceback in the journal.
    faulthandler.enable()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201
        return 1
    logs.configure(config.logging.level, config.logging.format)
    try:
        asyncio.run(app.run(config))
    except (ConfigError, StorageError) as exc:
        structlog.get_logger("doorwatch").error("cannot start", error=str(exc))
        return 1
    return 0
