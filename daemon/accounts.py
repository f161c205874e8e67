"""Console accounts: users with roles, argon2id password hashes, server-side sessions."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from doorwatch.storage import Database, Migration

MIGRATIONS = [
    Migration(
        "accounts-1",
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL CHECK (role IN ('guard', 'sro', 'admin')),
            audiences TEXT NOT NULL DEFAULT '[]',
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            address TEXT
        );
        CREATE INDEX sessions_user ON sessions(user_id)
        """,
    )
]

# OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane): about 40 ms here, so a login costs
# the server little while an offline guess stays expensive.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A hash of a random password, verified when the user does not exist, so that a wrong name and
# a wrong password take the same time.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 10


class Role(enum.StrEnum):
    """What a console user may do; each role includes the ones before it."""

    GUARD = "guard"
    SRO = "sro"
    ADMIN = "admin"

    def includes(self, other: Role) -> bool:
        """Whether this role has at least ``other``'s rights."""
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True, slots=True)
class User:
    """A console account (never carries the password hash outside this module)."""

    id: int
    name: str
    role: Role
    audiences: tuple[str, ...]
    disabled: bool

    def to_json(self) -> dict[str, object]:
        """JSON for the API."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "audiences": list(self.audiences),
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: who, and the token its state-changing requests must carry."""

    user: User
    csrf_token: str
    created_at: float
    last_seen: float


class LoginResult(enum.Enum):
    """Why a login did or did not work (the API tells the user less than this)."""

    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


class AccountError(ValueError):
    """A user cannot be created or changed as asked."""


def check_password(password: str) -> None:
    """Refuse passwords a guard's phone keyboard makes tempting but an attacker guesses."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password:
        raise AccountError("password must not start or end with spaces")


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        audiences=tuple(orjson.loads(row["audiences"])),
        disabled=bool(row["disabled"]),
    )


def _token_hash(token: str) -> str:
    # Only a hash of the cookie is stored: a copied database does not log anyone in.
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users and sessions in the daemon's database."""

    def __init__(
        self,
        db: Database,
        *,
        session_idle: float = 1800.0,
        session_max: float = 43200.0,
        max_attempts: int = 5,
        lockout: float = 900.0,
    ) -> None:
        self.db = db
        self.session_idle = session_idle
        self.session_max = session_max
        self.max_attempts = max_attempts
        self.lockout = lockout

    async def setup(self) -> None:
        """Create the tables on first use."""
        await self.db.migrate(MIGRATIONS)

    async def add_user(
        self, name: str, role: Role, password: str, audiences: tuple[str, ...] = ()
    ) -> User:
        """Create a user; the password is hashed with argon2id off the event loop."""
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):  # noqa: PLR2004
            raise AccountError("user names are 1-64 characters without spaces")
        check_password(password)
        password_hash = await asyncio.to_thread(_HASHER.hash, password)

        def insert(conn: sqlite3.Connection) -> User:
            try:
                conn.execute(
                    "INSERT INTO users(name, role, audiences, password_hash, created_at)"
                    " VALUES (?,?,?,?,?)",
                    (
                        name,
                        role.value,
                        orjson.dumps(list(audiences)).decode(),
                        password_hash,
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError:
                raise AccountError(f"a user named {name!r} already exists") from None
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            return _user(row)

        return await self.db.transaction(insert)

    async def set_password(self, name: str, password: str) -> None:
        """Change a password and end the user's sessions."""
        check_password(password)
        password_hash = await asyncio.to_thread(_HASHER.hash, password)

        def update(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise AccountError(f"no user named {name!r}")
            conn.execute(
                "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0"
                " WHERE id = ?",
                (password_hash, row["id"]),
            )
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (row["id"],))

        await self.db.transaction(update)

    async def set_disabled(self, name: str, *, disabled: bool) -> None:
        """Disable (and log out everywhere) or re-enable a user."""

        def update(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise AccountError(f"no user named {name!r}")
            conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), row["id"]))
            if disabled:
                conn.execute("DELETE FROM sessions WHERE user_id = ?", (row["id"],))

        await self.db.transaction(update)

    async def users(self) -> list[User]:
        """Every user, by name."""
        return await self.db.call(
            lambda c: [_user(r) for r in c.execute("SELECT * FROM users ORDER BY name")]
        )

    async def login(
        self, name: str, password: str, *, address: str | None
    ) -> tuple[LoginResult, str | None, Session | None]:
        """Check a password; on success open a session and return its cookie token."""
        now = time.time()
        row = await self.db.call(
            lambda c: c.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        )
        if row is not None and row["locked_until"] > now:
            return LoginResult.LOCKED, None, None
        stored = row["password_hash"] if row is not None else _DUMMY_HASH
        ok = await asyncio.to_thread(_verify, stored, password)
        if row is None or row["disabled"] or not ok:
            if row is not None:
                await self._count_failure(row["id"], now)
            return LoginResult.BAD_CREDENTIALS, None, None
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)

        def open_session(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", (row["id"],)
            )
            # Expired sessions are swept here rather than by a timer: logins are rare.
            conn.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created_at < ?",
                (now - self.session_idle, now - self.session_max),
            )
            conn.execute(
                "INSERT INTO sessions(token_hash, user_id, csrf_token, created_at, last_seen,"
                " address) VALUES (?,?,?,?,?,?)",
                (_token_hash(token), row["id"], csrf, now, now, address),
            )

        await self.db.transaction(open_session)
        return LoginResult.OK, token, Session(_user(row), csrf, now, now)

    async def _count_failure(self, user_id: int, now: float) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?", (user_id,)
            )
            conn.execute(
                "UPDATE users SET locked_until = ?, failed_logins = 0"
                " WHERE id = ? AND failed_logins >= ?",
                (now + self.lockout, user_id, self.max_attempts),
            )

        await self.db.transaction(update)

    async def session(self, token: str, *, touch: bool = True) -> Session | None:
        """The live session for a cookie token; None when unknown or expired.

        ``touch`` counts this as activity (a request); a live stream checking that its session
        still stands passes False, so an open console alone does not keep it alive.
        """
        now = time.time()
        key = _token_hash(token)

        def lookup(conn: sqlite3.Connection) -> Session | None:
            row = conn.execute(
                "SELECT s.csrf_token, s.created_at, s.last_seen, u.* FROM sessions s"
                " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            expired = (
                row["last_seen"] < now - self.session_idle
                or row["created_at"] < now - self.session_max
            )
            if expired or row["disabled"]:
                conn.execute("DELETE FROM sessions WHERE token_hash = ?", (key,))
                return None
            # Refreshing last_seen at most once a minute keeps reads cheap.
            if touch and now - row["last_seen"] > 60:  # noqa: PLR2004
                conn.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, key))
            return Session(_user(row), row["csrf_token"], row["created_at"], now)

        return await self.db.call(lookup)

    async def logout(self, token: str) -> None:
        """End a session on the server (the cookie is then worthless)."""
        key = _token_hash(token)
        await self.db.call(lambda c: c.execute("DELETE FROM sessions WHERE token_hash = ?", (key,)))


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False
