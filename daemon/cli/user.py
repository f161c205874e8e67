"""``doorwatch user add|passwd|disable|enable|list``: console accounts (there is no default)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

from doorwatch.accounts import AccountError, Accounts, Role
from doorwatch.config import load_config
from doorwatch.errors import ConfigError, StorageError
from doorwatch.storage import Database

DEFAULT_CONFIG = Path("/etc/doorwatch/doorwatch.yaml")


def add_parser(sub: Any) -> None:
    """Add the ``user`` subcommand and its actions."""
    parser = sub.add_parser("user", help="manage console accounts (guard, sro, admin)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument(
        "--audience",
        action="append",
        default=[],
        help="audiences this user sees alerts of (repeatable); none means all",
    )
    passwd = actions.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("name")
    for action in ("disable", "enable"):
        item = actions.add_parser(action, help=f"{action} an account")
        item.add_argument("name")
    actions.add_parser("list", help="list accounts")
    for child in actions.choices.values():
        child.add_argument(
            "-c", "--config", type=Path, default=DEFAULT_CONFIG, help="the daemon's config file"
        )
    parser.set_defaults(handler=handle)


def read_password() -> str:
    """Prompt twice on a terminal; otherwise read one line from stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise AccountError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _run(args: argparse.Namespace) -> str:
    config = load_config(args.config)
    db = await Database.open(config.storage.path)
    try:
        accounts = Accounts(db)
        await accounts.setup()
        if args.action == "add":
            user = await accounts.add_user(
                args.name, Role(args.role), read_password(), tuple(args.audience)
            )
            return f"added {user.name} ({user.role.value})"
        if args.action == "passwd":
            await accounts.set_password(args.name, read_password())
            return f"password changed for {args.name}; their sessions were ended"
        if args.action in {"disable", "enable"}:
            await accounts.set_disabled(args.name, disabled=args.action == "disable")
            return f"{args.name} {args.action}d"
        users = await accounts.users()
        return "\n".join(
            f"{u.name}\t{u.role.value}\t{','.join(u.audiences) or '*'}"
            f"{chr(9) + 'disabled' if u.disabled else ''}"
            for u in users
        )
    finally:
        await db.close()


def handle(args: argparse.Namespace) -> int:
    """Run the action; print one line per problem on stderr and exit 1 on failure."""
    try:
        output = asyncio.run(_run(args))
    except (ConfigError, StorageError, AccountError) as exc:
        print(f"user: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if output:
        print(output)  # noqa: T201
    return 0
