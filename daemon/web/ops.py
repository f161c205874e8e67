"""Operations endpoints: ``/healthz`` for monitors and systemd, ``/metrics`` for Prometheus."""

from __future__ import annotations

from aiohttp import web

from doorwatch.health import Health
from doorwatch.metrics import Metrics
from doorwatch.web.security import public

HEALTH_KEY = web.AppKey("health", Health)
METRICS_KEY = web.AppKey("metrics", Metrics)


@public
async def healthz(request: web.Request) -> web.Response:
    """200 with the checks when every part works, 503 with the failing ones otherwise."""
    healthy, report = request.app[HEALTH_KEY].report()
    return web.json_response(report, status=200 if healthy else 503)


@public
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[METRICS_KEY].render()
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


def add_routes(app: web.Application) -> None:
    """Mount the operations endpoints."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
