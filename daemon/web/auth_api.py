"""Login, logout and "who am I" for the console and API clients."""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from doorwatch.accounts import LoginResult, Role
from doorwatch.web.security import (
    ACCOUNTS_KEY,
    SESSION,
    TLS_KEY,
    LoginThrottle,
    cookie_name,
    current_session,
    public,
    requires,
)

log = structlog.get_logger(__name__)

THROTTLE_KEY = web.AppKey("login_throttle", LoginThrottle)


class _LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


@public
async def login(request: web.Request) -> web.Response:
    """Check name and password; set a fresh HttpOnly, SameSite=Strict session cookie."""
    if not request.app[THROTTLE_KEY].allow(_client(request)):
        return web.json_response({"error": "too many attempts; wait a minute"}, status=429)
    try:
        body = _LoginBody.model_validate_json(await request.read())
    except ValidationError:
        return web.json_response({"error": "send JSON {name, password}"}, status=400)
    accounts = request.app[ACCOUNTS_KEY]
    result, token, session = await accounts.login(
        body.name, body.password, address=_client(request)
    )
    if result is LoginResult.LOCKED:
        log.warning("login refused: account locked", user=body.name[:64], address=_client(request))
        return web.json_response(
            {"error": "account locked after repeated failures; try again later"}, status=423
        )
    if result is not LoginResult.OK or token is None or session is None:
        log.warning("login failed", user=body.name[:64], address=_client(request))
        return web.json_response({"error": "wrong name or password"}, status=401)
    log.info(
        "login", user=session.user.name, role=session.user.role.value, address=_client(request)
    )
    # A new token at every login: a cookie planted before login (fixation) is worthless after.
    old = request.cookies.get(cookie_name(request))
    if old:
        await accounts.logout(old)
    response = web.json_response({"user": session.user.to_json(), "csrf_token": session.csrf_token})
    response.set_cookie(
        cookie_name(request),
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[TLS_KEY],
        path="/",
        max_age=int(accounts.session_max),
    )
    return response


@requires(Role.GUARD)
async def logout(request: web.Request) -> web.Response:
    """End the session on the server and clear the cookie."""
    token = request.cookies.get(cookie_name(request))
    if token:
        await request.app[ACCOUNTS_KEY].logout(token)
    log.info("logout", user=current_session(request).user.name)
    response = web.json_response({"ok": True})
    response.del_cookie(cookie_name(request), path="/")
    return response


@public
async def whoami(request: web.Request) -> web.Response:
    """The logged-in user and the CSRF token, or 401 (the console calls this at start)."""
    session = request.get(SESSION)
    if session is None:
        return web.json_response({"error": "login required"}, status=401)
    return web.json_response({"user": session.user.to_json(), "csrf_token": session.csrf_token})


def add_routes(app: web.Application) -> None:
    """Mount the session endpoints."""
    app[THROTTLE_KEY] = LoginThrottle()
    app.router.add_post("/api/v1/login", login)
    app.router.add_post("/api/v1/logout", logout)
    app.router.add_get("/api/v1/session", whoami)
