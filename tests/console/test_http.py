"""The console page, its static assets (path traversal included) and the OpenAPI description."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from conftest import free_port

from doorwatch.web import console, openapi

STATIC = Path(console.__file__).parent / "static"


@pytest.fixture
async def site(running_daemon, tmp_path):
    daemon = await running_daemon(f"""
        site: {{name: "Test <b>High</b> & Co", timezone: America/Chicago}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """)
    return daemon, daemon.config.console.port


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as written (clients normalise ``..`` away; attackers don't)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(response.split(b" ", 2)[1])
    return status, response


async def test_the_page_is_served_at_the_root_with_the_security_headers(site):
    """``GET /`` answers the console shell (no data, so public), with CSP and the site name
    escaped; the stylesheet and script are served from /static with their types."""
    _, port = site
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY"
            page = await r.text()
        assert "Test &lt;b&gt;High&lt;/b&gt; &amp; Co" in page
        assert "<b>High" not in page
        assert '<script src="/static/console.js" defer></script>' in page
        for name, kind in [
            ("console.js", "text/javascript"),
            ("console.css", "text/css"),
            ("icon.svg", "image/svg+xml"),
        ]:
            async with http.get(f"{base}/static/{name}") as r:
                assert r.status == 200, name
                assert r.headers["Content-Type"].startswith(kind)
                assert (await r.read()) == (STATIC / name).read_bytes()


async def test_assets_are_revalidated_with_an_etag(site):
    """Assets carry an ETag and ``Cache-Control: no-cache``; a matching If-None-Match is 304."""
    _, port = site
    url = f"http://127.0.0.1:{port}/static/console.js"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            etag = r.headers["ETag"]
            assert r.headers["Cache-Control"] == "no-cache"
        async with http.get(url, headers={"If-None-Match": etag}) as r:
            assert r.status == 304
            assert await r.read() == b""


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../../../etc/passwd",
        "/static/../console.py",
        "/static/..%2fconsole.py",
        "/static/%2e%2e/console.py",
        "/static/%2e%2e%2fconsole.py",
        "/static/%2E%2E%2F%2E%2E%2Fapp.py",
        "/static/..%5cconsole.py",
        "/static/..\\console.py",
        "/static/%252e%252e%252fconsole.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/etc/passwd",
        "/static/..",
        "/static/.",
        "/static/",
        "/static/console.js%00.html",
        "/static/index.html",
        "//etc/passwd",
        "/../../etc/passwd",
        "/static/console.py",
        "/static/__init__.py",
    ],
)
async def test_path_traversal_never_reaches_the_file_system(site, target):
    """Whatever the path, only the packaged assets by bare name are served: ``..`` in any
    encoding, absolute paths and source files all get 4xx and none of their contents."""
    _, port = site
    status, response = await raw_get(port, target)
    assert 400 <= status < 500, (target, status)
    assert b"root:" not in response
    assert b"STATIC_DIR" not in response
    assert b"import " not in response


def test_only_known_file_types_with_plain_names_are_loaded(tmp_path):
    """The asset table skips subfolders, dot files, unknown types and symlinked folders."""
    (tmp_path / "index.html").write_text("<p>{{site}}</p>")
    (tmp_path / "ok.js").write_text("1")
    (tmp_path / ".hidden.js").write_text("1")
    (tmp_path / "secret.py").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.js").write_text("1")
    assert sorted(console.load_assets(tmp_path)) == ["index.html", "ok.js"]
    (tmp_path / "index.html").unlink()
    with pytest.raises(FileNotFoundError):
        console.load_assets(tmp_path)


def test_the_shipped_assets_leave_no_room_for_script_injection():
    """The page has no inline script, style or event handler (the CSP would block them), and
    the script never parses HTML from strings."""
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "<style" not in page
    assert re.findall(r"\sstyle=", page) == []
    assert re.findall(r"\son[a-z]+=", page, flags=re.IGNORECASE) == []
    script = (STATIC / "console.js").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
    ):
        assert sink not in code, sink
    assert "http://" not in script
    assert "https://" not in script  # no CDN, nothing from the internet
    assert "http" not in (STATIC / "console.css").read_text().replace("http-equiv", "")


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_openapi_lists_every_api_route_and_nothing_else(site):
    """``/api/v1/openapi.json`` is public OpenAPI 3.1; its operations are exactly the
    mounted /api/v1 routes (plus /healthz and /metrics), each hand-described, with the role
    the handler really requires; every $ref resolves."""
    daemon, port = site
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/api/v1/openapi.json") as r,
    ):
        assert r.status == 200
        document = await r.json()
    assert document["openapi"] == "3.1.0"
    mounted = {
        (route.method, route.resource.canonical)
        for route in daemon.web_app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical.startswith("/api/v1")
    }
    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith("/api/v1")
    }
    assert described == mounted
    assert {k for k in openapi.OPERATIONS if k[1].startswith("/api/v1")} == mounted
    assert {"/healthz", "/metrics"} <= set(document["paths"])
    roles = {
        (method.upper(), path): operation["x-role"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert roles[("POST", "/api/v1/login")] == "public"
    assert roles[("GET", "/api/v1/alerts/export")] == "sro"
    assert roles[("POST", "/api/v1/users")] == "admin"
    assert roles[("GET", "/api/v1/doors")] == "guard"
    assert "denied" not in roles.values()
    post_ack = document["paths"]["/api/v1/alerts/{id}/ack"]["post"]
    assert any(p["name"] == "X-CSRF-Token" for p in post_ack["parameters"])
    assert {"401", "403"} <= set(post_ack["responses"])
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_docs_api_md_mentions_every_route():
    """docs/api.md, the human description, names every mounted /api/v1 path."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    for _method, path in openapi.OPERATIONS:
        if path.startswith("/api/v1"):
            assert path.rsplit("/", 1)[-1] in text or path in text, path
