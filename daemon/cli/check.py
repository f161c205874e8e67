"""``doorwatch check -c FILE``: validate the config (and its rules) without running anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from doorwatch.config import Config, load_config
from doorwatch.config.secrets import read_secret
from doorwatch.errors import ConfigError


def add_parser(sub: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = sub.add_parser(
        "check", help="validate a config file; every error names file, line, key and fix"
    )
    parser.add_argument("-c", "--config", type=Path, required=True, help="the YAML config file")
    parser.set_defaults(handler=handle)


def secret_problems(config: Config) -> list[str]:
    """Try to read every secret file the config names; return the problems."""
    paths: list[tuple[str, Path]] = []
    if config.mqtt and config.mqtt.password_file:
        paths.append(("mqtt.password_file", config.mqtt.password_file))
    for index, camera in enumerate(config.cameras):
        if camera.password_file:
            paths.append((f"cameras[{index}].password_file", camera.password_file))
    for index, hook in enumerate(config.notify.webhooks):
        if hook.secret_file:
            paths.append((f"notify.webhooks[{index}].secret_file", hook.secret_file))
    for index, target in enumerate(config.notify.apprise):
        if target.url_file:
            paths.append((f"notify.apprise[{index}].url_file", target.url_file))
    problems = []
    for key_path, path in paths:
        try:
            read_secret(path, key_path=key_path)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def handle(args: argparse.Namespace) -> int:
    """Print each problem on its own line; exit 1 if there is any."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201
        return 1
    problems = [f"{args.config}: {p}" for p in secret_problems(config)]
    if problems:
        print("\n".join(problems), file=sys.stderr)  # noqa: T201
        return 1
    print(  # noqa: T201
        f"{args.config}: ok ({len(config.doors)} doors, {len(config.controllers)} controllers, "
        f"{len(config.cameras)} cameras, {len(config.rules)} rules)"
    )
    return 0
