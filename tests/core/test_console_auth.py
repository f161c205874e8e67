"""Console accounts and sessions: login, lockout, throttling, CSRF, expiry, deny by default."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
from conftest import free_port

from doorwatch.accounts import Role

PASSWORD = "correct horse battery"


def client(**kwargs) -> aiohttp.ClientSession:
    # aiohttp's default jar ignores cookies of IP hosts; browsers do not.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)


def site(tmp_path, **console) -> str:
    port = free_port()
    extra = "".join(f", {k}: {v}" for k, v in console.items())
    return f"""
        site: {{name: Test High, timezone: America/Chicago}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
        console: {{listen: "127.0.0.1:{port}"{extra}}}
    """


async def start(running_daemon, tmp_path, **console):
    daemon = await running_daemon(site(tmp_path, **console))
    await daemon.accounts.add_user("ann", Role.GUARD, PASSWORD)
    await daemon.accounts.add_user("sam", Role.SRO, PASSWORD)
    return daemon, f"http://127.0.0.1:{daemon.config.console.port}"


async def login(
    session: aiohttp.ClientSession, base: str, name: str = "ann", password: str = PASSWORD
):
    async with session.post(f"{base}/api/v1/login", json={"name": name, "password": password}) as r:
        return r.status, await r.json(), r


async def test_every_api_endpoint_needs_a_session(running_daemon, tmp_path):
    """Without a session cookie the API answers 401 (and logout too); health stays public."""
    _, base = await start(running_daemon, tmp_path)
    async with client() as http:
        for method, path in [
            ("GET", "/api/v1/doors"),
            ("GET", "/api/v1/events"),
            ("GET", "/api/v1/stream"),
            ("POST", "/api/v1/logout"),
        ]:
            async with http.request(method, base + path) as response:
                assert response.status == 401, path
        async with http.get(base + "/api/v1/session") as response:
            assert response.status == 401
        async with http.get(base + "/healthz") as response:
            assert response.status == 200


async def test_login_sets_a_strict_httponly_cookie_and_returns_a_csrf_token(
    running_daemon, tmp_path
):
    """A good login answers the user and a CSRF token and sets a HttpOnly SameSite=Strict cookie."""
    _, base = await start(running_daemon, tmp_path)
    async with client() as http:
        status, body, response = await login(http, base)
        assert status == 200
        assert body["user"] == {
            "id": 1,
            "name": "ann",
            "role": "guard",
            "audiences": [],
            "disabled": False,
        }
        assert len(body["csrf_token"]) >= 32
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        async with http.get(base + "/api/v1/doors") as doors:
            assert doors.status == 200
            data = await doors.json()
            assert data["doors"][0]["door"] == "gym-east"
            assert data["doors"][0]["name"] == "Gym east"
            assert doors.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert doors.headers["X-Frame-Options"] == "DENY"
            assert doors.headers["Cache-Control"] == "no-store"


async def test_wrong_password_and_unknown_user_look_the_same(running_daemon, tmp_path):
    """Wrong password and unknown user both get the same 401, so names cannot be probed."""
    _, base = await start(running_daemon, tmp_path)
    async with client() as http:
        one = await login(http, base, "ann", "wrong password!")
        two = await login(http, base, "nobody", "wrong password!")
        assert (one[0], one[1]) == (two[0], two[1]) == (401, {"error": "wrong name or password"})


async def test_brute_force_locks_the_account(running_daemon, tmp_path):
    """After login_attempts failures the account is locked, even for the right password."""
    _, base = await start(running_daemon, tmp_path, login_attempts=3, lockout="10m")
    async with client() as http:
        for _ in range(3):
            assert (await login(http, base, "ann", "guess guess guess"))[0] == 401
        status, body, _ = await login(http, base, "ann", PASSWORD)
        assert status == 423
        assert "locked" in body["error"]
        # Another account is not affected.
        assert (await login(http, base, "sam", PASSWORD))[0] == 200


async def test_many_attempts_from_one_address_are_throttled(running_daemon, tmp_path):
    """More than 10 login attempts a minute from one address get 429."""
    _, base = await start(running_daemon, tmp_path)
    async with client() as http:
        statuses = [(await login(http, base, f"user{i}", "x" * 12))[0] for i in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


async def test_state_changes_need_the_csrf_token(running_daemon, tmp_path):
    """POST without the X-CSRF-Token header, or with a wrong one or a foreign Origin, is 403."""
    _, base = await start(running_daemon, tmp_path)
    async with client() as http:
        _, body, _ = await login(http, base)
        token = body["csrf_token"]
        async with http.post(base + "/api/v1/logout") as r:
            assert r.status == 403
        async with http.post(base + "/api/v1/logout", headers={"X-CSRF-Token": "nope"}) as r:
            assert r.status == 403
        evil = {"X-CSRF-Token": token, "Origin": "https://evil.example"}
        async with http.post(base + "/api/v1/logout", headers=evil) as r:
            assert r.status == 403
        cross = {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}
        async with http.post(base + "/api/v1/logout", headers=cross) as r:
            assert r.status == 403
        async with http.post(base + "/api/v1/logout", headers={"X-CSRF-Token": token}) as r:
            assert r.status == 200
        async with http.get(base + "/api/v1/doors") as r:
            assert r.status == 401


async def test_logout_ends_the_session_on_the_server(running_daemon, tmp_path):
    """A cookie copied before logout no longer works after it."""
    _, base = await start(running_daemon, tmp_path)
    async with client() as http:
        _, body, response = await login(http, base)
        cookie = response.cookies["doorwatch_session"].value
        async with http.post(base + "/api/v1/logout", headers={"X-CSRF-Token": body["csrf_token"]}):
            pass
    async with (
        client(cookies={"doorwatch_session": cookie}) as thief,
        thief.get(base + "/api/v1/doors") as r,
    ):
        assert r.status == 401


async def test_session_fixation_a_planted_cookie_is_replaced(running_daemon, tmp_path):
    """Logging in with a cookie planted beforehand yields a different, fresh token."""
    _, base = await start(running_daemon, tmp_path)
    async with client(cookies={"doorwatch_session": "planted"}) as http:
        _, _, response = await login(http, base)
        assert response.cookies["doorwatch_session"].value != "planted"


async def test_idle_session_expires(running_daemon, tmp_path):
    """A session unused for longer than session_idle is refused."""
    _, base = await start(running_daemon, tmp_path, session_idle="1s")
    async with client() as http:
        await login(http, base)
        async with http.get(base + "/api/v1/doors") as r:
            assert r.status == 200
        await asyncio.sleep(1.3)
        async with http.get(base + "/api/v1/doors") as r:
            assert r.status == 401


async def test_disabling_a_user_ends_their_sessions(running_daemon, tmp_path):
    """An admin disabling an account logs it out everywhere at once."""
    daemon, base = await start(running_daemon, tmp_path)
    async with client() as http:
        await login(http, base)
        await daemon.accounts.set_disabled("ann", disabled=True)
        async with http.get(base + "/api/v1/doors") as r:
            assert r.status == 401
        assert (await login(http, base))[0] == 401


async def test_a_route_without_a_role_marker_is_denied(running_daemon, tmp_path):
    """Deny by default: an endpoint nobody marked public or role-checked answers 403."""
    from aiohttp import web

    from doorwatch.web.security import access_control

    async def unmarked(_request):
        return web.json_response({"secret": True})

    app = web.Application(middlewares=[access_control])
    app.router.add_get("/x", unmarked)
    request = pytest.importorskip("aiohttp.test_utils").make_mocked_request("GET", "/x", app=app)
    match = await app.router.resolve(request)
    request._match_info = match
    response = await access_control(request, unmarked)
    assert response.status == 403


def test_user_command_adds_accounts_and_refuses_weak_passwords(tmp_path):
    """``doorwatch user add`` reads the password on stdin, hashes it, refuses short ones and
    duplicates; ``user list`` shows no hashes."""
    config = tmp_path / "dw.yaml"
    config.write_text(f"site: {{name: T}}\nstorage: {{path: {tmp_path / 'dw.db'}}}\n")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "doorwatch", "user", *args, "-c", str(config)],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )

    ok = run("add", "guard1", "--role", "guard", "--audience", "guards-east", stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "added guard1 (guard)"
    short = run("add", "guard2", "--role", "guard", stdin="short\n")
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr
    again = run("add", "guard1", "--role", "sro", stdin=PASSWORD + "\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    listing = run("list")
    assert listing.stdout.strip() == "guard1\tguard\tguards-east"
    import sqlite3

    stored = (
        sqlite3.connect(tmp_path / "dw.db").execute("SELECT password_hash FROM users").fetchone()[0]
    )
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
