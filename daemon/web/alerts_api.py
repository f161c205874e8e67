"""Alert endpoints: list, detail (audit, deliveries), snapshot, acknowledge, resolve, export."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from doorwatch.accounts import Role, Session
from doorwatch.alerts.store import AlertError, AlertStore
from doorwatch.events import parse_iso, utcnow
from doorwatch.notify.outbox import Outbox
from doorwatch.web.api import CONFIG_KEY
from doorwatch.web.security import current_session, requires

log = structlog.get_logger(__name__)

ALERTS_KEY = web.AppKey("alerts", AlertStore)
OUTBOX_KEY = web.AppKey("outbox", Outbox)

_STATES = {
    "open": ("active", "acknowledged"),
    "active": ("active",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "all": ("active", "acknowledged", "resolved"),
}
# Lists are for screens; exports for reports may be larger.
_MAX_LIST = 1000
_MAX_EXPORT = 100_000


def visible(session: Session, alert: dict[str, Any]) -> bool:
    """Guards see the alerts of their audiences (all, if they have none); SROs see all."""
    user = session.user
    if user.role.includes(Role.SRO) or not user.audiences:
        return True
    audiences = alert.get("audiences") or []
    return not audiences or bool(set(audiences) & set(user.audiences))


def stream_filter(session: Session, topic: str, data: dict[str, Any]) -> bool:
    """Per-user filter of the live stream: alert messages by audience, everything else passes."""
    return topic != "alert" or visible(session, data.get("alert", {}))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=orjson.dumps({"error": f"{name} must be ISO-8601"}).decode(),
            content_type="application/json",
        ) from None


def _states(request: web.Request) -> tuple[str, ...]:
    state = request.query.get("state", "open")
    if state not in _STATES:
        raise web.HTTPBadRequest(
            text=orjson.dumps({"error": f"state must be one of {', '.join(_STATES)}"}).decode(),
            content_type="application/json",
        )
    return _STATES[state]


@requires(Role.GUARD)
async def list_alerts(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts?state=open&limit=200&since=&until=``, newest first."""
    try:
        limit = max(1, min(_MAX_LIST, int(request.query.get("limit", "200"))))
    except ValueError:
        return _error(400, "limit must be a number")
    session = current_session(request)
    alerts = await request.app[ALERTS_KEY].query(
        states=_states(request),
        limit=limit,
        since=_time(request, "since"),
        until=_time(request, "until"),
    )
    return web.json_response({"alerts": [a for a in alerts if visible(session, a)]})


async def _visible_alert(request: web.Request) -> dict[str, Any]:
    alert = await request.app[ALERTS_KEY].get(request.match_info["id"])
    # An alert a guard may not see is reported as missing, not as forbidden: ids are not
    # secrets, but there is no reason to confirm one exists.
    if alert is None or not visible(current_session(request), alert):
        raise web.HTTPNotFound(text='{"error": "no such alert"}', content_type="application/json")
    return alert


@requires(Role.GUARD)
async def alert_detail(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts/{id}``: the alert, its audit trail and its deliveries."""
    alert = await _visible_alert(request)
    store = request.app[ALERTS_KEY]
    return web.json_response(
        {
            "alert": alert,
            "audit": await store.audit(alert["id"]),
            "deliveries": await request.app[OUTBOX_KEY].for_alert(alert["id"]),
        }
    )


@requires(Role.GUARD)
async def alert_snapshot(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts/{id}/snapshot``: the JPEG taken when the alert was raised."""
    alert = await _visible_alert(request)
    jpeg = await request.app[ALERTS_KEY].snapshot(alert["id"])
    if jpeg is None:
        return _error(404, "no snapshot for this alert")
    return web.Response(
        body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


class _NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


async def _note(request: web.Request) -> str | None:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return _NoteBody.model_validate_json(raw).note
    except ValidationError:
        raise web.HTTPBadRequest(
            text='{"error": "send JSON {\\"note\\": \\"...\\"} (at most 2000 characters)"}',
            content_type="application/json",
        ) from None


async def _act(request: web.Request, action: str) -> web.Response:
    alert = await _visible_alert(request)
    session = current_session(request)
    note = await _note(request)
    store = request.app[ALERTS_KEY]
    method = store.acknowledge if action == "ack" else store.resolve
    try:
        change = await method(
            alert["id"],
            user=session.user.name,
            role_may_force=session.user.role.includes(Role.SRO),
            note=note,
            address=request.remote,
            at=utcnow(),
        )
    except AlertError as exc:
        return _error(exc.status, str(exc))
    log.info(
        "alert changed by user",
        action=change.action,
        alert_id=alert["id"],
        user=session.user.name,
        rule=alert["rule"],
        forced=not alert["condition_cleared"],
    )
    return web.json_response({"alert": change.alert})


@requires(Role.GUARD)
async def acknowledge(request: web.Request) -> web.Response:
    """``POST /api/v1/alerts/{id}/ack`` with an optional note."""
    return await _act(request, "ack")


@requires(Role.GUARD)
async def resolve(request: web.Request) -> web.Response:
    """``POST /api/v1/alerts/{id}/resolve`` with an optional note."""
    return await _act(request, "resolve")


_CSV_FIELDS = (
    "id", "rule", "severity", "title", "door", "door_name", "camera", "zone", "state",
    "raised_at", "raised_local", "cleared_at", "cleared_local",
    "acknowledged_by", "acknowledged_at", "acknowledged_local",
    "resolved_by", "resolved_at", "resolved_local",
    "occurrences", "audiences", "notes", "audit",
)  # fmt: skip
# The UTC columns are for tools; an SRO's report reads the site's wall clock beside them.
_LOCAL_COLUMNS = {
    "raised_local": "raised_at",
    "cleared_local": "cleared_at",
    "acknowledged_local": "acknowledged_at",
    "resolved_local": "resolved_at",
}


def _site_local(value: Any, zone: ZoneInfo) -> str | None:
    """An ISO UTC time as the site's wall clock, e.g. ``2026-11-30 16:00:00 CST``."""
    if not isinstance(value, str) or not value:
        return None
    return parse_iso(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _csv_cell(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else orjson.dumps(value).decode()
        if value is not None
        else ""
    )
    # Spreadsheet formula injection: a cell that starts with = + - @ is read as a formula.
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


@requires(Role.SRO)
async def export(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts/export?format=csv|json[&alert=ID]``: alerts with audit trails.

    For an SRO's report; ``alert`` exports one incident.
    """
    fmt = request.query.get("format", "json")
    if fmt not in {"csv", "json"}:
        return _error(400, "format must be csv or json")
    store = request.app[ALERTS_KEY]
    if "alert" in request.query:
        one = await store.get(request.query["alert"])
        if one is None:
            return _error(404, "no such alert")
        alerts = [one]
    else:
        states = _STATES["all"] if "state" not in request.query else _states(request)
        alerts = await store.query(
            states=states,
            limit=_MAX_EXPORT,
            since=_time(request, "since"),
            until=_time(request, "until"),
        )
    for alert in alerts:
        alert["audit"] = await store.audit(alert["id"])
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    name = f"doorwatch-alert-{alerts[0]['id']}" if "alert" in request.query else "doorwatch-alerts"
    headers = {"Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'}
    log.info(
        "alerts exported", user=current_session(request).user.name, count=len(alerts), format=fmt
    )
    timezone = request.app[CONFIG_KEY].site.timezone
    zone = ZoneInfo(timezone)
    if fmt == "json":
        return web.Response(
            body=orjson.dumps(
                {"site_timezone": timezone, "alerts": alerts}, option=orjson.OPT_INDENT_2
            ),
            content_type="application/json",
            headers=headers,
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_FIELDS)
    for alert in alerts:
        row = alert | {
            local: _site_local(alert.get(utc), zone) for local, utc in _LOCAL_COLUMNS.items()
        }
        writer.writerow([_csv_cell(row.get(name)) for name in _CSV_FIELDS])
    return web.Response(text=out.getvalue(), content_type="text/csv", headers=headers)


def add_routes(app: web.Application) -> None:
    """Mount the alert endpoints (export before {id} so it is not taken for an id)."""
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alerts/export", export)
    app.router.add_get("/api/v1/alerts/{id}", alert_detail)
    app.router.add_get("/api/v1/alerts/{id}/snapshot", alert_snapshot)
    app.router.add_post("/api/v1/alerts/{id}/ack", acknowledge)
    app.router.add_post("/api/v1/alerts/{id}/resolve", resolve)
