"""Who may call what: sessions, roles (deny by default), CSRF, login throttling, headers."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from doorwatch.accounts import Accounts, Role, Session

ACCOUNTS_KEY = web.AppKey("accounts", Accounts)
SESSION = web.RequestKey("session", Session)
TLS_KEY = web.AppKey("tls", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

_ROLE_ATTR = "_doorwatch_role"
_PUBLIC = "public"

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def requires(role: Role) -> Callable[[H], H]:
    """Mark a handler as needing a logged-in user with at least ``role``."""

    def mark(handler: H) -> H:
        setattr(handler, _ROLE_ATTR, role)
        return handler

    return mark


def public(handler: H) -> H:
    """Mark a handler as open to anyone (login, health, metrics, static assets)."""
    setattr(handler, _ROLE_ATTR, _PUBLIC)
    return handler


def cookie_name(request: web.Request) -> str:
    """``__Host-`` cookies must be Secure; over plain HTTP (loopback) use a plain name."""
    return "__Host-doorwatch" if request.app[TLS_KEY] else "doorwatch_session"


def current_session(request: web.Request) -> Session:
    """The session of a request that passed the role check."""
    session: Session = request[SESSION]
    return session


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _handler_of(request: web.Request) -> Any:
    route = request.match_info.route
    handler = getattr(route, "handler", None)
    # Class-based or partial handlers keep the marker on the underlying function.
    return getattr(handler, "__func__", handler)


@web.middleware
async def access_control(  # noqa: PLR0911 - one exit per refusal reason.
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Load the session, enforce the route's role and CSRF; routes without a marker are denied."""
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405 answers need no session.
    requirement = getattr(_handler_of(request), _ROLE_ATTR, None)
    if requirement is None:
        # Deny by default: a new endpoint without @requires/@public is a bug, not an open door.
        return _error(403, "forbidden")
    token = request.cookies.get(cookie_name(request))
    session = await request.app[ACCOUNTS_KEY].session(token) if token else None
    if session is not None:
        request[SESSION] = session
    if requirement == _PUBLIC:
        return await handler(request)
    if session is None:
        return _error(401, "login required")
    if not session.user.role.includes(requirement):
        return _error(403, f"needs the {requirement} role")
    if request.method in _UNSAFE and not _csrf_ok(request, session):
        return _error(403, "missing or wrong CSRF token")
    return await handler(request)


def _csrf_ok(request: web.Request, session: Session) -> bool:
    sent = request.headers.get("X-CSRF-Token", "")
    if not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        return False
    # A browser tells us where the request came from; only our own pages may change state.
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin in _own_origins(request)


def _own_origins(request: web.Request) -> set[str]:
    host = request.headers.get("Host", "")
    return {f"http://{host}", f"https://{host}"}


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSP, no sniffing, no framing, no referrer leaks; HSTS when served over TLS."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.app[TLS_KEY]:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if isinstance(response, web.HTTPException):
        raise response
    return response


class LoginThrottle:
    """At most ``limit`` login attempts per client address per ``window`` seconds.

    Per-account lockout (in the database) stops guessing one password; this stops one client
    trying many accounts.
    """

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._attempts: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        """Record an attempt; False when the address has used up its allowance."""
        now = time.monotonic()
        attempts = self._attempts.setdefault(address, deque())
        while attempts and attempts[0] < now - self.window:
            attempts.popleft()
        if len(attempts) >= self.limit:
            return False
        attempts.append(now)
        if len(self._attempts) > 10_000:  # noqa: PLR2004 - bound memory under a spray of addresses.
            self._attempts = {k: v for k, v in self._attempts.items() if v}
        return True
