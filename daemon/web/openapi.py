"""The OpenAPI 3.1 description of the HTTP API, served at ``/api/v1/openapi.json``.

Paths come from the application's route table, so the description lists exactly what is
mounted; the words and schemas for each operation are written by hand in :data:`OPERATIONS`.
A test checks that the two agree, so a new endpoint cannot ship undocumented.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

from aiohttp import web

from doorwatch.accounts import Role
from doorwatch.events import EventKind
from doorwatch.web.security import public

JSON = dict[str, Any]

# The attribute security.requires/public put on handlers; read here to state each role.
_ROLE_ATTR = "_doorwatch_role"
# Routes outside /api/v1 that API clients (monitors, Prometheus) use and so are described too.
_OPS_PATHS = frozenset({"/healthz", "/metrics"})
_SEVERITIES = ["info", "low", "medium", "high", "critical"]
_ALERT_STATES = ["active", "acknowledged", "resolved"]


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> JSON:
    return {"type": [kind, "null"], **extra}


def _obj(properties: JSON, required: list[str] | None = None, **extra: Any) -> JSON:
    schema: JSON = {"type": "object", "properties": properties, **extra}
    if required is not None:
        schema["required"] = required
    return schema


_TIME = _nullable("string", format="date-time")

SCHEMAS: dict[str, JSON] = {
    "Error": _obj({"error": {"type": "string"}}, ["error"]),
    "Ok": _obj({"ok": {"const": True}}, ["ok"]),
    "User": _obj(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "role": {"enum": [r.value for r in Role]},
            "audiences": {"type": "array", "items": {"type": "string"}},
            "disabled": {"type": "boolean"},
        },
        ["id", "name", "role", "audiences", "disabled"],
    ),
    "SessionInfo": _obj(
        {"user": _ref("User"), "csrf_token": {"type": "string"}}, ["user", "csrf_token"]
    ),
    "Login": _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
        },
        ["name", "password"],
        additionalProperties=False,
    ),
    "Note": _obj(
        {"note": _nullable("string", maxLength=2000)},
        additionalProperties=False,
    ),
    "NewUser": _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "role": {"enum": [r.value for r in Role]},
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
            "audiences": {"type": "array", "items": {"type": "string"}, "maxItems": 32},
        },
        ["name", "role", "password"],
        additionalProperties=False,
    ),
    "AlertNote": _obj(
        {"at": {"type": "string", "format": "date-time"}, "by": {"type": "string"}, "text": {}},
        ["at", "by", "text"],
    ),
    "Alert": _obj(
        {
            "id": {"type": "string"},
            "seq": {"type": "integer"},
            "rule": {"type": "string"},
            "rule_type": {"type": "string"},
            "severity": {"enum": _SEVERITIES},
            "title": {"type": "string"},
            "site": {"type": "string"},
            "door": _nullable("string"),
            "door_name": _nullable("string"),
            "camera": _nullable("string"),
            "zone": _nullable("string"),
            "subject": {"type": "string"},
            "state": {"enum": _ALERT_STATES},
            "condition_cleared": {"type": "boolean"},
            "cleared_at": _TIME,
            "raised_at": {"type": "string", "format": "date-time"},
            "updated_at": _TIME,
            "acknowledged_by": _nullable("string"),
            "acknowledged_at": _TIME,
            "resolved_by": _nullable("string", description="null when it auto-resolved"),
            "resolved_at": _TIME,
            "occurrences": {"type": "integer"},
            "audiences": {"type": "array", "items": {"type": "string"}},
            "escalation_level": {"type": "integer"},
            "reminded_at": _TIME,
            "notes": {"type": "array", "items": _ref("AlertNote")},
            "has_snapshot": {"type": "boolean"},
            "details": {"type": "object"},
        },
        ["id", "rule", "severity", "title", "state", "raised_at", "condition_cleared"],
    ),
    "AuditEntry": _obj(
        {
            "at": {"type": "string", "format": "date-time"},
            "action": {
                "type": "string",
                "description": "raised, updated, escalated, acknowledged, resolved, note, "
                "cleared, delivered, ...",
            },
            "actor": {"type": "string", "description": "a user name, or system"},
            "address": _nullable("string"),
            "detail": {"type": "object"},
        },
        ["at", "action", "actor"],
    ),
    "Delivery": _obj(
        {
            "target": {"type": "string"},
            "idempotency_key": {"type": "string"},
            "state": {"type": "string"},
            "attempts": {"type": "integer"},
            "created_at": {"type": "number", "description": "epoch seconds"},
            "sent_at": _nullable("number"),
            "last_error": _nullable("string"),
        }
    ),
    "AlertDetail": _obj(
        {
            "alert": _ref("Alert"),
            "audit": {"type": "array", "items": _ref("AuditEntry")},
            "deliveries": {"type": "array", "items": _ref("Delivery")},
        },
        ["alert", "audit", "deliveries"],
    ),
    "AlertChange": _obj(
        {
            "action": {
                "enum": ["raised", "updated", "escalated", "acknowledged", "resolved", "cleared"]
            },
            "alert": _ref("Alert"),
        },
        ["action", "alert"],
    ),
    "LastAccess": _obj(
        {
            "at": {"type": "string", "format": "date-time"},
            "granted": {"type": "boolean"},
            "holder": _nullable("string"),
            "credential": _nullable("string", description="masked"),
            "direction": {"enum": ["in", "out", None]},
            "kind": {"type": "string"},
        }
    ),
    "Door": _obj(
        {
            "door": {"type": "string"},
            "name": {"type": "string"},
            "zone": _nullable("string"),
            "cameras": {"type": "array", "items": {"type": "string"}},
            "configured": {"type": "boolean"},
            "position": {"enum": ["open", "closed", "unknown"]},
            "since": _TIME,
            "locked": _nullable("boolean"),
            "alarms": {
                "type": "array",
                "items": {"enum": ["forced", "held", "held_warning"]},
            },
            "last_access": {"oneOf": [_ref("LastAccess"), {"type": "null"}]},
            "last_grant_at": _TIME,
            "last_exit_request_at": _TIME,
            "last_event_at": _TIME,
        },
        ["door", "name", "position", "alarms"],
    ),
    "Event": _obj(
        {
            "seq": {"type": "integer"},
            "kind": {"enum": [k.value for k in EventKind]},
            "source": {"type": "string"},
            "device": _nullable("string"),
            "door": _nullable("string"),
            "door_ref": _nullable("string"),
            "camera": _nullable("string"),
            "credential": _nullable("string"),
            "holder": _nullable("string"),
            "direction": {"enum": ["in", "out", None]},
            "reason": _nullable("string"),
            "device_time": _TIME,
            "received_at": {"type": "string", "format": "date-time"},
            "replayed": {"type": "boolean"},
            "dedupe_key": _nullable("string"),
        },
        ["seq", "kind", "source", "received_at"],
    ),
    "NewEvents": _obj(
        {
            "events": {
                "type": "array",
                "items": _ref("Event"),
                "description": "The newest events journaled since the last message, oldest first.",
            },
            "omitted": {
                "type": "integer",
                "minimum": 0,
                "description": "Older events of the same interval left out (a burst); when "
                "above 0, reload the newest page of /api/v1/events.",
            },
        },
        ["events", "omitted"],
    ),
}


def _json_body(schema: JSON, description: str = "OK") -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> JSON:
    return _json_body(_ref("Error"), description)


def _query(name: str, description: str, schema: JSON | None = None) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_SINCE = _query(
    "since", "ISO-8601; only items at or after", {"type": "string", "format": "date-time"}
)
_UNTIL = _query("until", "ISO-8601; only items before", {"type": "string", "format": "date-time"})
_NOTE_BODY = {
    "required": False,
    "content": {"application/json": {"schema": _ref("Note")}},
}


def _list(name: str, item: str) -> JSON:
    return _obj({name: {"type": "array", "items": _ref(item)}}, [name])


# (method, path) -> the hand-written part of the operation.
OPERATIONS: dict[tuple[str, str], JSON] = {
    ("POST", "/api/v1/login"): {
        "summary": "Log in; sets the session cookie",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("Login")}},
        },
        "responses": {
            "200": _json_body(_ref("SessionInfo")),
            "400": _error("Not JSON {name, password}"),
            "401": _error("Wrong name or password"),
            "423": _error("Account locked after repeated failures"),
            "429": _error("Too many attempts from this address"),
        },
    },
    ("POST", "/api/v1/logout"): {
        "summary": "End the session",
        "responses": {"200": _json_body(_ref("Ok"))},
    },
    ("GET", "/api/v1/session"): {
        "summary": "Who is logged in, and the CSRF token",
        "responses": {"200": _json_body(_ref("SessionInfo")), "401": _error("Not logged in")},
    },
    ("GET", "/api/v1/alerts"): {
        "summary": "Alerts the user may see, newest first",
        "parameters": [
            _query(
                "state",
                "open (active and acknowledged, default), active, acknowledged, resolved or all",
                {"enum": ["open", "active", "acknowledged", "resolved", "all"]},
            ),
            _query("limit", "at most 1000, default 200", {"type": "integer", "maximum": 1000}),
            _SINCE,
            _UNTIL,
        ],
        "responses": {"200": _json_body(_list("alerts", "Alert")), "400": _error("Bad query")},
    },
    ("GET", "/api/v1/alerts/export"): {
        "summary": "Alerts with their audit trails, as a CSV or JSON file for a report",
        "parameters": [
            _query("format", "csv or json (default)", {"enum": ["csv", "json"]}),
            _query("alert", "one incident: only this alert id (other filters are ignored)"),
            _query("state", "as for the list; default all"),
            _SINCE,
            _UNTIL,
        ],
        "responses": {
            "200": {
                "description": (
                    "A file download (Content-Disposition: attachment). Times are UTC; the CSV"
                    " adds each one as the site's wall clock (raised_local, ...), the JSON"
                    " names the site's zone"
                ),
                "content": {
                    "application/json": {
                        "schema": _obj(
                            {
                                "site_timezone": {"type": "string"},
                                "alerts": {"type": "array", "items": _ref("Alert")},
                            },
                            ["site_timezone", "alerts"],
                        )
                    },
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "400": _error("Bad format or query"),
        },
    },
    ("GET", "/api/v1/alerts/{id}"): {
        "summary": "An alert, its audit trail and its deliveries (the incident view)",
        "parameters": [_ID],
        "responses": {"200": _json_body(_ref("AlertDetail")), "404": _error("No such alert")},
    },
    ("GET", "/api/v1/alerts/{id}/snapshot"): {
        "summary": "The camera snapshot taken when the alert was raised",
        "parameters": [_ID],
        "responses": {
            "200": {
                "description": "JPEG",
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            },
            "404": _error("No such alert, or no snapshot"),
        },
    },
    ("POST", "/api/v1/alerts/{id}/ack"): {
        "summary": "Acknowledge an alert",
        "description": "Acknowledging an alert whose condition has not cleared (force) needs "
        "the sro role and a note.",
        "parameters": [_ID],
        "requestBody": _NOTE_BODY,
        "responses": {
            "200": _json_body(_obj({"alert": _ref("Alert")}, ["alert"])),
            "400": _error("Bad note, or a note is required"),
            "404": _error("No such alert"),
            "409": _error("Already resolved"),
        },
    },
    ("POST", "/api/v1/alerts/{id}/resolve"): {
        "summary": "Resolve an alert",
        "description": "Resolving an uncleared condition needs the sro role and a note.",
        "parameters": [_ID],
        "requestBody": _NOTE_BODY,
        "responses": {
            "200": _json_body(_obj({"alert": _ref("Alert")}, ["alert"])),
            "400": _error("Bad note, or a note is required"),
            "404": _error("No such alert"),
            "409": _error("Already resolved"),
        },
    },
    ("GET", "/api/v1/doors"): {
        "summary": "Every door with its live state and last access",
        "responses": {"200": _json_body(_list("doors", "Door"))},
    },
    ("GET", "/api/v1/events"): {
        "summary": "The event log, newest first",
        "parameters": [
            _query("limit", "at most 1000, default 100", {"type": "integer", "maximum": 1000}),
            _query("door", "a site door id"),
            _query("kind", "an event kind", {"enum": [k.value for k in EventKind]}),
            _SINCE,
            _UNTIL,
            _query("before", "only events with a smaller seq (paging)", {"type": "integer"}),
        ],
        "responses": {"200": _json_body(_list("events", "Event")), "400": _error("Bad query")},
    },
    ("GET", "/api/v1/stream"): {
        "summary": "Live alerts, door changes and new events as Server-Sent Events",
        "description": "`event: alert` carries an AlertChange, `event: door` a Door, `event: "
        "events` the NewEvents of the last quarter second. Every message has an `id:`. Guards "
        "receive only the alerts of their audiences; events go to every role, as the event "
        "log does.",
        "responses": {
            "200": {
                "description": "text/event-stream",
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "x-events": {
                            "alert": _ref("AlertChange"),
                            "door": _ref("Door"),
                            "events": _ref("NewEvents"),
                        },
                    }
                },
            }
        },
    },
    ("GET", "/api/v1/users"): {
        "summary": "Console accounts",
        "responses": {"200": _json_body(_list("users", "User"))},
    },
    ("POST", "/api/v1/users"): {
        "summary": "Add a console account",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("NewUser")}},
        },
        "responses": {
            "201": _json_body(_obj({"user": _ref("User")}, ["user"]), "Created"),
            "400": _error("Bad body, weak password or duplicate name"),
        },
    },
    ("POST", "/api/v1/users/{name}/disable"): {
        "summary": "Disable an account and end its sessions",
        "parameters": [_NAME],
        "responses": {
            "200": _json_body(_ref("Ok")),
            "404": _error("No such user"),
            "409": _error("You cannot disable yourself"),
        },
    },
    ("POST", "/api/v1/users/{name}/enable"): {
        "summary": "Enable an account",
        "parameters": [_NAME],
        "responses": {"200": _json_body(_ref("Ok")), "404": _error("No such user")},
    },
    ("GET", "/api/v1/openapi.json"): {
        "summary": "This description",
        "responses": {"200": _json_body({"type": "object"})},
    },
    ("GET", "/healthz"): {
        "summary": "Liveness and readiness, with every check",
        "responses": {
            "200": _json_body({"type": "object"}, "Every check passes"),
            "503": _json_body({"type": "object"}, "Some check fails"),
        },
    },
    ("GET", "/metrics"): {
        "summary": "Prometheus metrics",
        "responses": {
            "200": {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
}


def documented(path: str) -> bool:
    """Whether a route path belongs in the description."""
    return path.startswith("/api/v1/") or path in _OPS_PATHS


def mounted_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every described route mounted on ``app`` (HEAD left out)."""
    found = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in {"HEAD", "OPTIONS"} or not documented(path):
            continue
        found.append((route.method, path, route.handler))
    return found


def _operation(method: str, path: str, handler: Any) -> JSON:
    role = getattr(handler, _ROLE_ATTR, None)
    written = OPERATIONS.get((method, path))
    if written is None:
        # Still listed (the test fails until someone writes it up), from the docstring.
        doc = (handler.__doc__ or path).strip().splitlines()[0]
        written = {"summary": doc, "responses": {"200": {"description": "OK"}}}
    operation: JSON = {
        "operationId": _operation_id(method, path),
        **written,
        "x-role": role if role is not None else "denied",
    }
    responses: JSON = dict(operation["responses"])
    if role not in {"public", None}:
        operation["security"] = [{"session": []}]
        operation["description"] = (
            operation.get("description", "") + f" Needs the `{role}` role or higher."
        ).strip()
        responses.setdefault("401", _error("No session, or it expired"))
        responses.setdefault("403", _error(f"Needs the {role} role, or CSRF check failed"))
    if method == "POST" and role not in {"public", None}:
        operation["parameters"] = [
            *operation.get("parameters", []),
            {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": True,
                "description": "the csrf_token from login or session",
                "schema": {"type": "string"},
            },
        ]
    operation["responses"] = responses
    return operation


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix("/api/v1")).strip("_")
    return f"{method.lower()}_{words or 'root'}"


def _version() -> str:
    try:
        return importlib.metadata.version("doorwatch")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def build(app: web.Application) -> JSON:
    """The OpenAPI document for the routes mounted on ``app``."""
    paths: dict[str, JSON] = {}
    for method, path, handler in mounted_routes(app):
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, handler)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "doorwatch API",
            "version": _version(),
            "description": "Console and integration API of a doorwatch site daemon. Log in "
            "with POST /api/v1/login; the session cookie authenticates later calls and every "
            "POST carries the X-CSRF-Token header. Roles: guard < sro < admin.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "doorwatch_session",
                    "description": "__Host-doorwatch when served over TLS",
                }
            },
        },
    }


@public
async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of this API."""
    # Built per request (it is small), from the routes mounted by then, alerts included.
    return web.json_response(build(request.app))


def add_routes(app: web.Application) -> None:
    """Mount the description."""
    app.router.add_get("/api/v1/openapi.json", openapi_json)
