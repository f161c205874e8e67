"""Builds the aiohttp application: middlewares, then each group of routes."""

from __future__ import annotations

from aiohttp import web

from doorwatch.accounts import Accounts
from doorwatch.alerts.store import AlertStore
from doorwatch.config import Config
from doorwatch.health import Health
from doorwatch.journal import Journal
from doorwatch.metrics import Metrics
from doorwatch.notify.outbox import Outbox
from doorwatch.state import StateStore
from doorwatch.web import alerts_api, api, auth_api, console, openapi, ops, stream, users_api
from doorwatch.web.security import ACCOUNTS_KEY, TLS_KEY, access_control, security_headers

# Requests are small JSON bodies (a login, an acknowledgement note).
_MAX_BODY = 64 * 1024


def build_web_app(
    *,
    config: Config,
    health: Health,
    metrics: Metrics,
    accounts: Accounts,
    state: StateStore,
    journal: Journal,
    hub: stream.Hub,
) -> web.Application:
    """The whole HTTP surface; every route is public or role-checked (deny by default)."""
    app = web.Application(client_max_size=_MAX_BODY, middlewares=[security_headers, access_control])
    app[TLS_KEY] = config.console.tls_cert_file is not None
    app[ACCOUNTS_KEY] = accounts
    app[ops.HEALTH_KEY] = health
    app[ops.METRICS_KEY] = metrics
    app[api.CONFIG_KEY] = config
    app[api.STATE_KEY] = state
    app[api.JOURNAL_KEY] = journal
    app[stream.HUB_KEY] = hub
    ops.add_routes(app)
    auth_api.add_routes(app)
    api.add_routes(app)
    users_api.add_routes(app)
    app.router.add_get("/api/v1/stream", stream.stream)
    openapi.add_routes(app)
    console.add_routes(app, config.site.name, config.site.timezone)
    app[stream.STREAM_FILTER_KEY] = alerts_api.stream_filter
    return app


def attach_alerts(app: web.Application, store: AlertStore, outbox: Outbox) -> None:
    """Mount the alert endpoints once the alert store exists."""
    app[alerts_api.ALERTS_KEY] = store
    app[alerts_api.OUTBOX_KEY] = outbox
    alerts_api.add_routes(app)
