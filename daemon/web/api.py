"""Read-only API of the site: doors with their live state, and the recent event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from doorwatch.accounts import Role
from doorwatch.config import Config
from doorwatch.events import EventKind, parse_iso
from doorwatch.journal import Journal, JournaledEvent
from doorwatch.state import StateStore
from doorwatch.web.security import requires

CONFIG_KEY = web.AppKey("config", Config)
STATE_KEY = web.AppKey("state", StateStore)
JOURNAL_KEY = web.AppKey("journal", Journal)

_KINDS = frozenset(k.value for k in EventKind)
# The event log endpoint returns at most this many rows per call; older pages via before=.
_MAX_EVENTS = 1000


def door_json(config: Config, state: StateStore, door_id: str) -> dict[str, Any]:
    """A door as the console's door board shows it: config plus live state."""
    door = config.door(door_id)
    data = state.door(door_id).to_json()
    data.update(
        {
            "name": door.label if door else door_id,
            "zone": door.zone if door else None,
            "cameras": list(door.cameras) if door else [],
            "configured": door is not None,
        }
    )
    return data


@requires(Role.GUARD)
async def doors(request: web.Request) -> web.Response:
    """``GET /api/v1/doors``: every door, configured ones first, with state and last access."""
    config, state = request.app[CONFIG_KEY], request.app[STATE_KEY]
    ids = [d.id for d in config.doors] + sorted(set(state.doors) - {d.id for d in config.doors})
    return web.json_response({"doors": [door_json(config, state, d) for d in ids]})


def _query_time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f'{{"error": "{name} must be ISO-8601"}}', content_type="application/json"
        ) from None


def _query_int(request: web.Request, name: str, default: int | None) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f'{{"error": "{name} must be a number"}}', content_type="application/json"
        ) from None


def event_json(item: JournaledEvent) -> dict[str, Any]:
    """An event for the API: the canonical JSON plus its journal sequence number."""
    return {"seq": item.seq, **item.event.to_json()}


@requires(Role.GUARD)
async def events(request: web.Request) -> web.Response:
    """``GET /api/v1/events?limit=N&door=&kind=&since=&until=&before=``: newest first."""
    limit = max(1, min(_MAX_EVENTS, _query_int(request, "limit", 100) or 100))
    kind = request.query.get("kind") or None
    if kind is not None and kind not in _KINDS:
        raise web.HTTPBadRequest(text='{"error": "unknown kind"}', content_type="application/json")
    rows = await request.app[JOURNAL_KEY].recent(
        limit=limit,
        door=request.query.get("door") or None,
        kind=kind,
        since=_query_time(request, "since"),
        until=_query_time(request, "until"),
        before_seq=_query_int(request, "before", None),
    )
    return web.json_response({"events": [event_json(r) for r in rows]})


def add_routes(app: web.Application) -> None:
    """Mount the site endpoints."""
    app.router.add_get("/api/v1/doors", doors)
    app.router.add_get("/api/v1/events", events)
