"""``doorwatch demo [--port P] [--data DIR]``: a whole simulated school on this machine."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = sub.add_parser(
        "demo",
        help="run a simulated school (broker, controllers, cameras, console) with no setup",
    )
    parser.add_argument("--port", type=int, default=8080, help="console port (default 8080)")
    parser.add_argument(
        "--data", type=Path, default=None, help="keep the demo's data here (default: a temp dir)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run until Ctrl-C."""
    from doorwatch.demo.run import run_demo

    return asyncio.run(run_demo(port=args.port, data=args.data))
