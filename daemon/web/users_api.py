"""User administration for admins: list, create, disable, enable."""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from doorwatch.accounts import AccountError, Role
from doorwatch.web.security import ACCOUNTS_KEY, current_session, requires

log = structlog.get_logger(__name__)


class _NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=1, max_length=1024)
    audiences: list[str] = Field(default_factory=list, max_length=32)


@requires(Role.ADMIN)
async def list_users(request: web.Request) -> web.Response:
    """``GET /api/v1/users``."""
    users = await request.app[ACCOUNTS_KEY].users()
    return web.json_response({"users": [u.to_json() for u in users]})


@requires(Role.ADMIN)
async def create_user(request: web.Request) -> web.Response:
    """``POST /api/v1/users``."""
    try:
        body = _NewUser.model_validate_json(await request.read())
    except ValidationError:
        return web.json_response({"error": "send {name, role, password, audiences}"}, status=400)
    try:
        user = await request.app[ACCOUNTS_KEY].add_user(
            body.name, body.role, body.password, tuple(body.audiences)
        )
    except AccountError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    log.info(
        "user added", user=user.name, role=user.role.value, by=current_session(request).user.name
    )
    return web.json_response({"user": user.to_json()}, status=201)


async def _set_disabled(request: web.Request, *, disabled: bool) -> web.Response:
    name = request.match_info["name"]
    if disabled and name.lower() == current_session(request).user.name.lower():
        return web.json_response({"error": "you cannot disable yourself"}, status=409)
    try:
        await request.app[ACCOUNTS_KEY].set_disabled(name, disabled=disabled)
    except AccountError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    log.info(
        "user access changed",
        disabled=disabled,
        user=name,
        by=current_session(request).user.name,
    )
    return web.json_response({"ok": True})


@requires(Role.ADMIN)
async def disable_user(request: web.Request) -> web.Response:
    """``POST /api/v1/users/{name}/disable``: also ends the user's sessions."""
    return await _set_disabled(request, disabled=True)


@requires(Role.ADMIN)
async def enable_user(request: web.Request) -> web.Response:
    """``POST /api/v1/users/{name}/enable``."""
    return await _set_disabled(request, disabled=False)


def add_routes(app: web.Application) -> None:
    """Mount the user endpoints."""
    app.router.add_get("/api/v1/users", list_users)
    app.router.add_post("/api/v1/users", create_user)
    app.router.add_post("/api/v1/users/{name}/disable", disable_user)
    app.router.add_post("/api/v1/users/{name}/enable", enable_user)
