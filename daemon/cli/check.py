"""``doorwatch check -c FILE``: validate the config (and its rules) without running anything."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from doorwatch.config import Config, load_config
from doorwatch.config.base import CREDENTIALS_VARIABLE
from doorwatch.config.secrets import read_secret
from doorwatch.errors import ConfigError
from doorwatch.rules.loader import load_custom_rules


def add_parser(sub: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = sub.add_parser(
        "check", help="validate a config file; every error names file, line, key and fix"
    )
    parser.add_argument("-c", "--config", type=Path, required=True, help="the YAML config file")
    parser.set_defaults(handler=handle)


def _files(config: Config) -> list[tuple[str, Path]]:
    """Every file the config names, with its key path: secrets, certificates and keys."""
    files: list[tuple[str, Path | None]] = []
    if config.mqtt is not None:
        files += [
            ("mqtt.password_file", config.mqtt.password_file),
            ("mqtt.ca_file", config.mqtt.ca_file),
            ("mqtt.cert_file", config.mqtt.cert_file),
            ("mqtt.key_file", config.mqtt.key_file),
        ]
    # Codec options name their own files (uhppoted's hmac_key_file): any ``*_file`` field.
    files += [
        (f"controllers[{i}].{name}", value)
        for i, controller in enumerate(config.controllers)
        for name, value in vars(controller).items()
        if name.endswith("_file") and isinstance(value, Path)
    ]
    files += [
        (f"cameras[{i}].password_file", c.password_file) for i, c in enumerate(config.cameras)
    ]
    files += [
        (f"notify.webhooks[{i}].secret_file", h.secret_file)
        for i, h in enumerate(config.notify.webhooks)
    ]
    files += [
        (f"notify.apprise[{i}].url_file", t.url_file) for i, t in enumerate(config.notify.apprise)
    ]
    files += [
        ("console.tls_cert_file", config.console.tls_cert_file),
        ("console.tls_key_file", config.console.tls_key_file),
    ]
    return [(key, path) for key, path in files if path is not None]


def secret_problems(config: Config) -> tuple[list[str], list[str]]:
    """Try to read every file the config names; return (problems, notes).

    Paths in ``$CREDENTIALS_DIRECTORY`` only exist while systemd runs the service; outside it
    they are noted, not failed, so a config can be checked before it is installed.
    """
    problems: list[str] = []
    notes: list[str] = []
    for key_path, path in _files(config):
        if CREDENTIALS_VARIABLE in str(path) and CREDENTIALS_VARIABLE not in os.environ:
            notes.append(
                f"{key_path}: {path} is read under systemd (LoadCredential=); not checked here"
            )
            continue
        try:
            if key_path.endswith(("password_file", "secret_file", "url_file")):
                read_secret(path, key_path=key_path)
            else:
                # Certificates and CA bundles may be large; being there and readable is enough.
                with path.open("rb") as handle:
                    handle.read(1)
        except ConfigError as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{key_path}: cannot read {path} ({exc.strerror}); fix: check the path")
    return problems, notes


def handle(args: argparse.Namespace) -> int:
    """Print each problem on its own line; exit 1 if there is any."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201
        return 1
    problems, notes = secret_problems(config)
    problems += load_custom_rules(config)
    for note in notes:
        print(f"{args.config}: note: {note}", file=sys.stderr)  # noqa: T201
    problems = [f"{args.config}: {p}" for p in problems]
    if problems:
        print("\n".join(problems), file=sys.stderr)  # noqa: T201
        return 1
    print(  # noqa: T201
        f"{args.config}: ok ({len(config.doors)} doors, {len(config.controllers)} controllers, "
        f"{len(config.cameras)} cameras, {len(config.rules)} rules)"
    )
    return 0
