"""Alert and user endpoints, for every role, through a running daemon."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime

import aiohttp
import pytest
from conftest import free_port

from doorwatch.accounts import Role
from doorwatch.alerts.store import AlertRequest
from doorwatch.rules.config import Severity

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, base: str, name: str) -> dict[str, str]:
    async with http.post(f"{base}/api/v1/login", json={"name": name, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return {"X-CSRF-Token": (await r.json())["csrf_token"]}


@pytest.fixture
async def site(running_daemon, tmp_path):
    daemon = await running_daemon(f"""
        site: {{name: Test High, timezone: America/Chicago}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
          - {{id: main, name: Main entrance, zone: front}}
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """)
    accounts = daemon.accounts
    await accounts.add_user("east", Role.GUARD, PASSWORD, ("guards-east",))
    await accounts.add_user("anyguard", Role.GUARD, PASSWORD)
    await accounts.add_user("sam", Role.SRO, PASSWORD)
    await accounts.add_user("root", Role.ADMIN, PASSWORD)
    store = daemon.alerts.store
    held = await store.raise_alert(
        AlertRequest(
            rule="door_held_open",
            rule_type="door_held_open",
            subject="door:gym-east",
            severity=Severity.HIGH,
            title="Gym east held open",
            at=NOW,
            trigger="t1",
            door="gym-east",
            door_name="Gym east",
            zone="athletics",
            audiences=("guards-east",),
        )
    )
    forced = await store.raise_alert(
        AlertRequest(
            rule="door_forced_open",
            rule_type="door_forced_open",
            subject="door:main",
            severity=Severity.CRITICAL,
            title='=HYPERLINK("http://evil") Main forced',
            at=NOW,
            trigger="t2",
            door="main",
            door_name="Main entrance",
            zone="front",
            audiences=("guards-west",),
            momentary=True,
        )
    )
    return (
        daemon,
        f"http://127.0.0.1:{daemon.config.console.port}",
        held.alert["id"],
        forced.alert["id"],
    )


async def test_guard_sees_only_their_audience(site):
    """A guard with audiences sees only matching alerts; one without audiences sees all; an
    alert they may not see is 404, not 403."""
    _, base, held, forced = site
    async with client() as http:
        await login(http, base, "east")
        async with http.get(base + "/api/v1/alerts") as r:
            assert [a["id"] for a in (await r.json())["alerts"]] == [held]
        async with http.get(f"{base}/api/v1/alerts/{forced}") as r:
            assert r.status == 404
    async with client() as http:
        await login(http, base, "anyguard")
        async with http.get(base + "/api/v1/alerts") as r:
            assert {a["id"] for a in (await r.json())["alerts"]} == {held, forced}


async def test_acknowledge_with_note_over_http_and_the_audit_records_who(site):
    """A guard acknowledges the momentary forced alert with a note; detail shows the audit."""
    daemon, base, _, forced = site
    async with client() as http:
        headers = await login(http, base, "anyguard")
        async with http.post(
            f"{base}/api/v1/alerts/{forced}/ack",
            json={"note": "checked, door secured"},
            headers=headers,
        ) as r:
            assert r.status == 200
            alert = (await r.json())["alert"]
        assert alert["state"] == "resolved"
        assert alert["notes"][0] == {
            "at": alert["notes"][0]["at"],
            "by": "anyguard",
            "text": "checked, door secured",
        }
        async with http.get(f"{base}/api/v1/alerts/{forced}") as r:
            detail = await r.json()
        assert [a["action"] for a in detail["audit"]] == ["raised", "acknowledged", "resolved"]
        assert detail["audit"][1]["actor"] == "anyguard"
        assert detail["audit"][1]["address"] == "127.0.0.1"
        async with http.post(f"{base}/api/v1/alerts/{forced}/ack", headers=headers) as r:
            assert r.status == 409


async def test_guard_cannot_force_an_uncleared_condition_but_an_sro_can_with_a_note(site):
    """Held door still open: guard 403; SRO without note 400; SRO with note 200."""
    _, base, held, _ = site
    async with client() as http:
        headers = await login(http, base, "east")
        async with http.post(
            f"{base}/api/v1/alerts/{held}/ack", json={"note": "x"}, headers=headers
        ) as r:
            assert r.status == 403
            assert "SRO" in (await r.json())["error"]
    async with client() as http:
        headers = await login(http, base, "sam")
        async with http.post(f"{base}/api/v1/alerts/{held}/resolve", headers=headers) as r:
            assert r.status == 403
        async with http.post(f"{base}/api/v1/alerts/{held}/ack", json={}, headers=headers) as r:
            assert r.status == 400
        async with http.post(
            f"{base}/api/v1/alerts/{held}/ack",
            json={"note": "custodian propping for delivery"},
            headers=headers,
        ) as r:
            assert r.status == 200
            assert (await r.json())["alert"]["state"] == "acknowledged"


async def test_ack_needs_csrf_and_a_session(site):
    """Acknowledging without the CSRF header is 403, without a session 401."""
    _, base, _, forced = site
    async with client() as http:
        async with http.post(f"{base}/api/v1/alerts/{forced}/ack") as r:
            assert r.status == 401
        await login(http, base, "anyguard")
        async with http.post(f"{base}/api/v1/alerts/{forced}/ack") as r:
            assert r.status == 403


async def test_bad_inputs_are_400(site):
    """Unknown state filter, bad dates, wrong note type are 400 with a sentence."""
    _, base, _, forced = site
    async with client() as http:
        headers = await login(http, base, "sam")
        for query in ("state=nope", "since=yesterday", "limit=many"):
            async with http.get(f"{base}/api/v1/alerts?{query}") as r:
                assert r.status == 400, query
        async with http.post(
            f"{base}/api/v1/alerts/{forced}/ack", json={"note": 5}, headers=headers
        ) as r:
            assert r.status == 400
        async with http.post(f"{base}/api/v1/alerts/nope/ack", headers=headers) as r:
            assert r.status == 404


async def test_export_is_for_sros_and_defuses_formulas(site):
    """SROs export CSV and JSON with audit trails; guards get 403; CSV cells cannot be formulas."""
    _, base, _, _ = site
    async with client() as http:
        await login(http, base, "anyguard")
        async with http.get(base + "/api/v1/alerts/export?format=csv") as r:
            assert r.status == 403
    async with client() as http:
        await login(http, base, "sam")
        async with http.get(base + "/api/v1/alerts/export?format=csv") as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"].startswith(
                'attachment; filename="doorwatch-alerts-'
            )
            rows = list(csv.DictReader(io.StringIO(await r.text())))
        titles = sorted(row["title"] for row in rows)
        assert titles[0].startswith("'=HYPERLINK")
        # 22:00 UTC is 16:00 at the Chicago site; both are in the report.
        assert {row["raised_at"] for row in rows} == {"2026-11-30T22:00:00.000Z"}
        assert {row["raised_local"] for row in rows} == {"2026-11-30 16:00:00 CST"}
        assert {row["resolved_local"] for row in rows} == {""}
        async with http.get(base + "/api/v1/alerts/export?format=json") as r:
            body = await r.json(content_type=None)
        assert all(a["audit"][0]["action"] == "raised" for a in body["alerts"])
        assert body["site_timezone"] == "America/Chicago"


async def test_export_of_one_incident(site):
    """``alert=ID`` exports that incident alone, with its audit trail; an unknown id is 404."""
    _, base, held, _ = site
    async with client() as http:
        await login(http, base, "sam")
        async with http.get(f"{base}/api/v1/alerts/export?format=json&alert={held}") as r:
            assert r.status == 200
            assert f"doorwatch-alert-{held}-" in r.headers["Content-Disposition"]
            body = await r.json(content_type=None)
        (only,) = body["alerts"]
        assert only["id"] == held
        assert [entry["action"] for entry in only["audit"]] == ["raised"]
        async with http.get(f"{base}/api/v1/alerts/export?format=csv&alert=nope") as r:
            assert r.status == 404


async def test_users_endpoints_are_admin_only(site):
    """SROs cannot list or add users; admins can, and can disable but not themselves."""
    _, base, _, _ = site
    async with client() as http:
        headers = await login(http, base, "sam")
        async with http.get(base + "/api/v1/users") as r:
            assert r.status == 403
        async with http.post(
            base + "/api/v1/users",
            json={"name": "x", "role": "admin", "password": PASSWORD},
            headers=headers,
        ) as r:
            assert r.status == 403
    async with client() as http:
        headers = await login(http, base, "root")
        async with http.post(
            base + "/api/v1/users",
            json={
                "name": "nina",
                "role": "guard",
                "password": PASSWORD,
                "audiences": ["guards-east"],
            },
            headers=headers,
        ) as r:
            assert r.status == 201
        async with http.get(base + "/api/v1/users") as r:
            names = [u["name"] for u in (await r.json())["users"]]
        assert "nina" in names
        assert all("password" not in str(u) for u in names)
        async with http.post(base + "/api/v1/users/root/disable", headers=headers) as r:
            assert r.status == 409
        async with http.post(base + "/api/v1/users/nina/disable", headers=headers) as r:
            assert r.status == 200


async def test_stream_delivers_alerts_filtered_by_audience(site):
    """The SSE stream sends an alert raised after connecting to a guard of its audience only."""
    import asyncio

    daemon, base, _, _ = site
    received: dict[str, list[str]] = {"east": [], "other": []}

    async def listen(name: str, guard: str) -> None:
        async with client() as http:
            await login(http, base, guard)
            async with http.get(base + "/api/v1/stream") as r:
                async for line in r.content:
                    if line.startswith(b"data: "):
                        received[name].append(line.decode())

    await_users = [
        asyncio.create_task(listen("east", "east")),
        asyncio.create_task(listen("other", "anyguard")),
    ]
    await asyncio.sleep(0.5)
    await daemon.alerts.store.raise_alert(
        AlertRequest(
            rule="duress",
            rule_type="duress",
            subject="door:main",
            severity=Severity.CRITICAL,
            title="Duress at main",
            at=NOW,
            trigger="t9",
            door="main",
            audiences=("guards-west",),
            momentary=True,
        )
    )
    for _ in range(50):
        if received["other"]:
            break
        await asyncio.sleep(0.05)
    for task in await_users:
        task.cancel()
    assert any("Duress at main" in line for line in received["other"])
    assert not any("Duress at main" in line for line in received["east"])


async def test_an_open_stream_ends_when_its_session_does(site, monkeypatch):
    """A session ended on the server (logout elsewhere, expiry, a disabled account) ends a
    live stream already open, within one keepalive period."""
    from doorwatch.web import stream

    monkeypatch.setattr(stream, "_KEEPALIVE", 0.3)
    daemon, base, _, _ = site
    async with client() as watcher:
        await login(watcher, base, "anyguard")
        token = next(iter(watcher.cookie_jar)).value
        async with watcher.get(base + "/api/v1/stream") as r:
            assert r.status == 200
            await r.content.readuntil(b"\n\n")  # retry: ...
            await asyncio.sleep(1.0)
            assert not r.content.at_eof(), "the stream stays open while the session lasts"
            await daemon.accounts.logout(token)
            body = await asyncio.wait_for(r.content.read(), 5)
        assert b"event: session-ended" in body
