"""Every API endpoint against every role, CSRF on every POST, and session ends.

The endpoint list comes from the served OpenAPI description (which a test in test_http.py
holds equal to the mounted routes), so a new endpoint is covered here without editing this
file. The cases the alert tests already cover (audiences, forcing, export contents) are not
repeated.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest
from conftest import free_port

from doorwatch.accounts import Role
from doorwatch.alerts.store import AlertRequest
from doorwatch.rules.config import Severity

PASSWORD = "correct horse battery"
ROLES = ["guard", "sro", "admin"]
RANK = {"guard": 0, "sro": 1, "admin": 2}
# Path parameters that name nothing: an allowed caller gets past the role and CSRF checks and
# then a 404, so the matrix changes no state.
PARAMS = {"{id}": "no-such-alert", "{name}": "nobody"}
# Bodies that pass the role check and then fail validation (or name nothing).
BODIES = {"/api/v1/users": {"name": ""}}
# login is public and tested on its own; logout would end the session the matrix uses.
SKIP = {("POST", "/api/v1/login"), ("POST", "/api/v1/logout")}


def client(**kwargs) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)


def site_yaml(tmp_path, **console) -> str:
    extra = "".join(f", {k}: {v}" for k, v in console.items())
    return f"""
        site: {{name: Test High, timezone: America/Chicago}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
          - {{id: main, name: Main entrance, zone: front}}
        console: {{listen: "127.0.0.1:{free_port()}"{extra}}}
    """


async def login(http: aiohttp.ClientSession, base: str, name: str) -> str:
    async with http.post(f"{base}/api/v1/login", json={"name": name, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["csrf_token"]


async def call(http, base, method, path, token=None, *, headers=None):
    """(status, error text) of one request; a stream is closed as soon as it answers."""
    for param, value in PARAMS.items():
        path = path.replace(param, value)
    sent = dict(headers or {})
    if token is not None:
        sent["X-CSRF-Token"] = token
    body = BODIES.get(path) if method == "POST" else None
    async with http.request(method, base + path, json=body, headers=sent) as r:
        if r.content_type == "application/json":
            return r.status, (await r.json()).get("error", "")
        return r.status, ""


@pytest.fixture
async def site(running_daemon, tmp_path):
    daemon = await running_daemon(site_yaml(tmp_path))
    for role in ROLES:
        await daemon.accounts.add_user(role, Role(role), PASSWORD)
    await daemon.accounts.add_user("east", Role.GUARD, PASSWORD, ("guards-east",))
    base = f"http://127.0.0.1:{daemon.config.console.port}"
    async with client() as http, http.get(base + "/api/v1/openapi.json") as r:
        document = await r.json()
    endpoints = [
        (method.upper(), path, operation["x-role"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/v1") and (method.upper(), path) not in SKIP
    ]
    return daemon, base, endpoints


async def test_every_endpoint_refuses_anonymous_callers(site):
    """Without a session every non-public endpoint answers 401; public ones answer."""
    _, base, endpoints = site
    async with client() as http:
        for method, path, role in endpoints:
            status, _ = await call(http, base, method, path)
            if path == "/api/v1/session":
                assert status == 401  # public, and says "nobody is logged in"
            elif role == "public":
                assert status not in {401, 403}, (method, path, status)
            else:
                assert status == 401, (method, path, status)


@pytest.mark.parametrize("user", ROLES)
async def test_every_endpoint_and_role(site, user):
    """Each role is refused (403, naming the role needed) by every endpoint above it and let
    through (with CSRF) by every endpoint at or below it."""
    _, base, endpoints = site
    async with client() as http:
        token = await login(http, base, user)
        for method, path, role in endpoints:
            status, error = await call(http, base, method, path, token)
            if role != "public" and RANK[user] < RANK[role]:
                assert status == 403, (user, method, path, status)
                assert f"needs the {role} role" in error
            else:
                assert status not in {401, 403}, (user, method, path, status, error)


async def test_every_post_needs_the_csrf_token_and_our_origin(site):
    """For every state-changing endpoint, an admin's session without the token, with a wrong
    one, or from a foreign origin is refused with 403 before anything happens."""
    _, base, endpoints = site
    posts = [(m, p) for m, p, role in endpoints if m == "POST" and role != "public"]
    assert len(posts) >= 5
    async with client() as http:
        token = await login(http, base, "admin")
        for method, path in posts:
            for sent, headers in [
                (None, None),
                ("wrong", None),
                (token, {"Origin": "http://evil.example"}),
                (token, {"Sec-Fetch-Site": "cross-site"}),
            ]:
                status, error = await call(http, base, method, path, sent, headers=headers)
                assert status == 403, (path, sent, headers, status)
                assert "CSRF" in error


async def test_a_guard_cannot_act_on_another_audiences_alert(site):
    """Acknowledging, resolving or fetching the snapshot of an alert outside the guard's
    audiences answers 404, exactly as for an alert that does not exist."""
    daemon, base, _ = site
    change = await daemon.alerts.store.raise_alert(
        AlertRequest(
            rule="duress",
            rule_type="duress",
            subject="door:main",
            severity=Severity.CRITICAL,
            title="Duress at main",
            at=datetime.now(UTC),
            trigger="d1",
            door="main",
            audiences=("guards-west",),
            momentary=True,
        )
    )
    alert_id = change.alert["id"]
    async with client() as http:
        token = await login(http, base, "east")
        for method, suffix in [("POST", "/ack"), ("POST", "/resolve"), ("GET", "/snapshot")]:
            status, error = await call(
                http, base, method, f"/api/v1/alerts/{alert_id}{suffix}", token
            )
            assert (status, error) == (404, "no such alert"), suffix
    assert (await daemon.alerts.store.get(alert_id))["state"] == "active"
    async with client() as http:
        token = await login(http, base, "sro")
        status, error = await call(http, base, "GET", f"/api/v1/alerts/{alert_id}/snapshot", token)
        assert (status, error) == (404, "no snapshot for this alert")


async def test_an_expired_session_is_refused_everywhere(running_daemon, tmp_path):
    """After the idle timeout the session answers 401 (not 403) to reads, writes with a good
    CSRF token, and the live stream."""
    daemon = await running_daemon(site_yaml(tmp_path, session_idle="1s"))
    await daemon.accounts.add_user("sro", Role.SRO, PASSWORD)
    base = f"http://127.0.0.1:{daemon.config.console.port}"
    async with client() as http:
        token = await login(http, base, "sro")
        await asyncio.sleep(1.3)
        for method, path in [
            ("GET", "/api/v1/alerts"),
            ("POST", "/api/v1/alerts/{id}/ack"),
            ("GET", "/api/v1/stream"),
            ("POST", "/api/v1/logout"),
        ]:
            status, error = await call(http, base, method, path, token)
            assert (status, error) == (401, "login required"), path


async def test_a_session_ends_at_its_maximum_age_even_when_busy(running_daemon, tmp_path):
    """A session used all the time still ends ``session_max`` after login."""
    daemon = await running_daemon(site_yaml(tmp_path, session_max="2s"))
    await daemon.accounts.add_user("guard", Role.GUARD, PASSWORD)
    base = f"http://127.0.0.1:{daemon.config.console.port}"
    async with client() as http:
        await login(http, base, "guard")
        statuses = []
        for _ in range(6):
            statuses.append((await call(http, base, "GET", "/api/v1/doors"))[0])
            await asyncio.sleep(0.5)
        assert statuses[0] == 200
        assert statuses[-1] == 401


async def test_a_locked_account_opens_again_after_the_lockout(running_daemon, tmp_path):
    """Brute force locks the account (423, even for the right password); once the lockout
    has passed the right password works again."""
    daemon = await running_daemon(site_yaml(tmp_path, login_attempts=2, lockout="1s"))
    await daemon.accounts.add_user("guard", Role.GUARD, PASSWORD)
    base = f"http://127.0.0.1:{daemon.config.console.port}"
    url = base + "/api/v1/login"
    async with client() as http:
        for _ in range(2):
            async with http.post(url, json={"name": "guard", "password": "guess guess"}) as r:
                assert r.status == 401
        async with http.post(url, json={"name": "guard", "password": PASSWORD}) as r:
            assert r.status == 423
        await asyncio.sleep(1.2)
        async with http.post(url, json={"name": "guard", "password": PASSWORD}) as r:
            assert r.status == 200
