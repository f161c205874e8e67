"""The console page and its static assets, shipped in the package and served as they are.

Assets are read once at start-up into a table keyed by bare file name. A request can only
ever name an entry of that table, so no path a client sends (``..``, ``%2e%2e``, an absolute
path, a symlink) reaches the file system.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from doorwatch.web.security import public

STATIC_DIR = Path(__file__).resolve().parent / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# The page itself is a shell with placeholders for the site's name and IANA time zone (the
# console shows every time in the site's zone, wherever the browser is); served at ``/`` only.
_PAGE = "index.html"
_SITE_PLACEHOLDER = "{{site}}"
_TIMEZONE_PLACEHOLDER = "{{timezone}}"
# Browsers revalidate every time (cheap with an ETag), so an upgraded daemon's assets are
# picked up at the next reload rather than after some cache lifetime.
_CACHE = "no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file, in memory."""

    body: bytes
    content_type: str
    etag: str


ASSETS_KEY: web.AppKey[Mapping[str, Asset]] = web.AppKey("console_assets")
SITE_NAME_KEY = web.AppKey("console_site_name", str)
SITE_TIMEZONE_KEY = web.AppKey("console_site_timezone", str)


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file directly in ``directory``; anything else is never served."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()):
        content_type = _TYPES.get(path.suffix)
        if content_type is None or not path.is_file() or not _SAFE_NAME.fullmatch(path.name):
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = Asset(body, content_type, etag)
    if _PAGE not in assets:
        raise FileNotFoundError(f"the console page {directory / _PAGE} is missing")
    return assets


def _not_found() -> web.Response:
    return web.json_response({"error": "not found"}, status=404)


def _send(request: web.Request, asset: Asset, body: bytes | None = None) -> web.Response:
    payload = asset.body if body is None else body
    etag = asset.etag if body is None else '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": _CACHE}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=payload, headers=headers)


@public
async def page(request: web.Request) -> web.Response:
    """``GET /``: the console page.

    Public, because it holds no data: it shows the login form until ``/api/v1/session`` says
    who is there, and every datum comes from the role-checked API.
    """
    asset = request.app[ASSETS_KEY][_PAGE]
    site = html.escape(request.app[SITE_NAME_KEY])
    zone = html.escape(request.app[SITE_TIMEZONE_KEY])
    body = (
        asset.body.decode()
        .replace(_SITE_PLACEHOLDER, site)
        .replace(_TIMEZONE_PLACEHOLDER, zone)
        .encode()
    )
    return _send(request, asset, body)


@public
async def static(request: web.Request) -> web.Response:
    """``GET /static/{name}``: a packaged stylesheet, script or icon, by bare name only."""
    name = request.match_info["name"]
    asset = request.app[ASSETS_KEY].get(name) if name != _PAGE else None
    if asset is None:
        return _not_found()
    return _send(request, asset)


def add_routes(app: web.Application, site_name: str, site_timezone: str) -> None:
    """Mount the console page and its assets; the page shows times in ``site_timezone``."""
    app[ASSETS_KEY] = load_assets()
    app[SITE_NAME_KEY] = site_name
    app[SITE_TIMEZONE_KEY] = site_timezone
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
