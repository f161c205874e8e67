"""The console in real headless Chromium (Debian's), driven by Playwright.

A daemon runs in this process with a real mosquitto; door events are published to the broker
as a controller would, so everything the browser shows went through the whole pipeline.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Publisher, free_port
from playwright.async_api import Browser, Page, expect

from doorwatch.accounts import Role
from doorwatch.adapters.onvif.fake.camera import snapshot_jpeg
from doorwatch.alerts.store import AlertRequest
from doorwatch.rules.config import Severity

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

ARTIFACTS = REPO / "test-artifacts"
PASSWORD = "correct horse battery"
# Counts its own executions; any value other than undefined means script ran.
XSS = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
DESK = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
_keys = itertools.count(1)


@dataclass
class Site:
    daemon: Any
    base: str
    publisher: Publisher

    async def send(self, kind: str, door: str, **fields: Any) -> None:
        """Publish a generic-codec event for a controller door reference."""
        payload = {"kind": kind, "door": door, "dedupe_key": f"t-{next(_keys)}", **fields}
        await asyncio.to_thread(self.publisher.publish, f"site/{door}/events", json.dumps(payload))

    async def door_state(self, door: str) -> str:
        return self.daemon.state.door(door).position.value


@dataclass
class Watched:
    """Console errors, page errors and dialogs seen on a page: all must stay empty."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


async def eventually(check, timeout: float = 15.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def site(running_daemon, broker, publisher, tmp_path) -> Site:
    body = f"""
        site: {{name: Test High, timezone: America/Chicago}}
        mqtt: {{url: "{broker.url}", client_id: dw-console-{free_port()}, keepalive: 5}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
          - {{id: main, name: Main entrance, zone: front}}
          - id: xss
            name: '{XSS}'
            zone: test
        controllers:
          - id: gen
            codec: generic
            topics: ["site/+/events"]
            doors: {{"gym": gym-east, "main": main, "xss": xss}}
        rules: [{{type: door_forced_open}}]
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """
    daemon = await running_daemon(textwrap.dedent(body))
    await daemon.accounts.add_user("gina", Role.GUARD, PASSWORD)
    await daemon.accounts.add_user("sam", Role.SRO, PASSWORD)
    result = Site(daemon, f"http://127.0.0.1:{daemon.config.console.port}", publisher)

    # The daemon subscribes after connecting: publish until an event is seen to arrive.
    async def ready() -> bool:
        await result.send("door.closed", "main")
        await asyncio.sleep(0.2)
        return await result.door_state("main") == "closed"

    await eventually(ready, what="the daemon to receive MQTT events")
    return result


async def open_page(browser: Browser, viewport: dict[str, int], **options: Any):
    context = await browser.new_context(viewport=viewport, **options)
    page = await context.new_page()
    watched = Watched()

    def on_console(message) -> None:
        url = message.location.get("url", "")
        # Chromium logs every 4xx answer; the start-up probe of /api/v1/session is 401 when
        # nobody is logged in, which is how the console learns to show the login form.
        if message.type == "error" and not (
            url.endswith("/api/v1/session") and "401" in message.text
        ):
            watched.errors.append(f"{message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))

    async def on_dialog(dialog) -> None:
        watched.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return context, page, watched


async def log_in(page: Page, base: str, name: str) -> None:
    await page.goto(base + "/")
    await expect(page.locator("#login-view")).to_be_visible()
    await page.fill("#login-name", name)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#app-view")).to_be_visible()
    await expect(page.locator("#conn")).to_have_text("Live")


def door_card(page: Page, door: str):
    return page.locator(f'#door-board li[data-door="{door}"]')


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


async def test_guard_sees_a_live_alert_acknowledges_it_and_the_door_board_follows(site, browser):
    """Log in; a forced door raises an alert that appears without a reload (with a beep);
    the guard acknowledges it with a note; the door board follows the door opening and
    closing; the event log filters by kind; a screenshot is saved."""
    context, page, watched = await open_page(browser, DESK)
    await log_in(page, site.base, "gina")
    await expect(page.locator("#whoami")).to_have_text("gina (guard)")
    # Exports are for SROs.
    await expect(page.locator("#alerts-panel .exports")).to_be_hidden()
    await expect(door_card(page, "gym-east").locator(".door-name")).to_have_text("Gym east")
    await expect(page.locator("#alerts-empty")).to_be_visible()
    await page.evaluate("window.__noReload = true")

    await site.send("door.opened", "gym")
    await expect(door_card(page, "gym-east").locator(".door-state")).to_have_text("Open")

    await site.send("door.forced", "main")
    alert = page.locator("#alert-list li.alert").filter(has_text="Door forced open: Main entrance")
    await expect(alert).to_be_visible()
    await expect(alert).to_have_class(
        "alert sev-critical state-active fresh", timeout=2000
    )  # severity colour
    await expect(page.locator("body")).to_have_attribute("data-beeps", "1")
    await expect(door_card(page, "main").locator(".door-state")).to_have_text("FORCED")
    await expect(page.locator("#alert-count")).to_have_text("1")
    assert await page.evaluate("window.__noReload") is True
    await page.screenshot(path=artifact("console.png"), full_page=True)

    await alert.locator("button").click()
    await expect(page.locator("#incident")).to_be_visible()
    await expect(page.locator("#incident-title")).to_have_text("Door forced open: Main entrance")
    await expect(page.locator("#incident-facts")).to_contain_text("Main entrance")
    await page.fill("#incident-note", "Checked: door secured, nobody inside.")
    await page.click("#ack-button")
    await expect(page.locator("#incident-notes .note-text")).to_have_text(
        "Checked: door secured, nobody inside."
    )
    audit = page.locator("#audit-rows tr")
    await expect(audit.filter(has_text="acknowledged")).to_contain_text("gina")
    await expect(page.locator("#incident-facts")).to_contain_text("resolved")
    await page.screenshot(path=artifact("console-incident.png"))
    await page.click("#incident-close")
    # A forced alert is momentary: acknowledging closes it, so it leaves the open list.
    await expect(page.locator("#alert-list li.alert")).to_have_count(0)
    await expect(page.locator("#alert-count")).to_have_text("")
    await page.select_option("#alert-state", "resolved")
    resolved = page.locator("#alert-list li.alert.state-resolved")
    await expect(resolved).to_contain_text("resolved by gina")
    await page.select_option("#alert-state", "open")
    await expect(page.locator("#alerts-empty")).to_be_visible()

    await site.send("door.closed", "gym")
    await expect(door_card(page, "gym-east").locator(".door-state")).to_have_text("Closed")
    await expect(door_card(page, "gym-east").locator(".door-since")).to_contain_text("since")

    await check_event_log_filters(page)
    assert watched.errors == []
    await context.close()


async def check_event_log_filters(page: Page) -> None:
    """The event log filters by kind and by door (after the main door was forced and the
    gym door opened and closed)."""
    await page.click('.tabs button[data-view="events"]')
    await expect(page.locator("#event-rows tr").first).to_be_visible()
    await page.select_option("#filter-kind", "door.forced")
    await page.click('#event-filters button[type="submit"]')
    rows = page.locator("#event-rows tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Main entrance")
    await page.select_option("#filter-kind", "")
    await page.select_option("#filter-door", "gym-east")
    await page.click('#event-filters button[type="submit"]')
    await expect(rows).to_have_count(2)  # opened, closed
    await expect(rows.first).to_contain_text("door.closed")


async def test_sro_force_acknowledges_an_uncleared_alert_only_with_a_note(site, browser):
    """A held-open alert whose door is still open: the SRO's console asks for a note before
    the force-acknowledge, then records it; export links are offered to the SRO."""
    context, page, watched = await open_page(browser, DESK)
    await log_in(page, site.base, "sam")
    await expect(page.locator("#alerts-panel .exports")).to_be_visible()
    change = await site.daemon.alerts.store.raise_alert(
        AlertRequest(
            rule="door_held_open",
            rule_type="door_held_open",
            subject="door:gym-east",
            severity=Severity.HIGH,
            title="Door held open: Gym east",
            at=datetime.now(UTC),
            trigger="held-1",
            door="gym-east",
            door_name="Gym east",
            zone="athletics",
            camera="cam-gym",
        )
    )
    await site.daemon.alerts.store.set_snapshot(
        change.alert["id"], snapshot_jpeg(), at=datetime.now(UTC)
    )
    alert = page.locator("#alert-list li.alert.sev-high")
    await expect(alert).to_contain_text("Door held open: Gym east")
    await expect(page.locator("body")).not_to_have_attribute("data-beeps", "1")  # not critical
    await alert.locator("button").click()
    # The camera snapshot, fetched from the role-checked snapshot endpoint.
    snapshot = page.locator("#incident-snapshot")
    await expect(snapshot).to_be_visible()
    await expect(snapshot).to_have_attribute("src", f"/api/v1/alerts/{change.alert['id']}/snapshot")
    await eventually(
        lambda: snapshot.evaluate("img => img.complete && img.naturalWidth > 0"),
        what="the snapshot to load",
    )
    await expect(page.locator("#incident-snapshot-caption")).to_contain_text("cam-gym")
    await page.screenshot(path=artifact("console-sro-incident.png"))
    await expect(page.locator("#force-hint")).to_contain_text("needs a note")
    await expect(page.locator("#ack-button")).to_have_text("Force-acknowledge")
    await page.click("#ack-button")
    await expect(page.locator("#action-error")).to_contain_text("Write a note")
    await page.fill("#incident-note", "Custodian propping it for a delivery.")
    await page.click("#ack-button")
    await expect(page.locator("#incident-facts")).to_contain_text("Acknowledged")
    await expect(page.locator("#incident-facts")).to_contain_text("sam at")
    await expect(page.locator("#ack-button")).to_be_disabled()
    export = page.locator("#incident-export-csv")
    href = await export.get_attribute("href")
    assert href.startswith("/api/v1/alerts/export?format=csv&alert=")
    async with page.expect_download() as info:
        await export.click()
    report = Path(await (await info.value).path()).read_text()
    rows = list(csv.DictReader(io.StringIO(report)))
    assert len(rows) == 1
    assert "Custodian propping it for a delivery." in rows[0]["notes"]
    assert "acknowledged" in rows[0]["audit"]
    async with page.expect_download() as info:
        await page.click("#incident-download")
    download = await info.value
    saved = json.loads(Path(await download.path()).read_text())
    assert saved["alert"]["notes"][0]["text"] == "Custodian propping it for a delivery."
    await page.click("#incident-close")
    await expect(alert).to_have_class("alert sev-high state-acknowledged")
    assert watched.errors == []
    await context.close()


async def test_stored_xss_through_door_holder_and_note_renders_as_text(site, browser):
    """A door name, a card holder's name and a note that are HTML render as text; no script
    runs and no element is created from them."""
    context, page, watched = await open_page(browser, DESK)
    await log_in(page, site.base, "gina")
    await site.send("access.granted", "xss", holder=XSS, credential="8165537", direction="in")
    card = door_card(page, "xss")
    await expect(card.locator(".door-name")).to_have_text(XSS)
    await expect(card.locator(".door-access")).to_contain_text(XSS)

    await site.send("door.forced", "xss")
    alert = page.locator("#alert-list li.alert").filter(has_text="Door forced open")
    await expect(alert.locator(".alert-title")).to_have_text(f"Door forced open: {XSS}")
    await alert.locator("button").click()
    await expect(page.locator("#incident-title")).to_have_text(f"Door forced open: {XSS}")
    await page.fill("#incident-note", XSS)
    await page.click("#ack-button")
    await expect(page.locator("#incident-notes .note-text")).to_have_text(XSS)
    await page.click("#incident-close")

    await page.click('.tabs button[data-view="events"]')
    await expect(page.locator("#event-rows")).to_contain_text(XSS)
    await page.select_option("#filter-door", "xss")  # the option label is the name, as text
    await expect(page.locator("#filter-door option[value='xss']")).to_have_text(XSS)

    assert await page.evaluate("typeof window.__xss") == "undefined"
    assert await page.locator("img[src='x']").count() == 0
    assert watched.dialogs == []
    assert watched.errors == []
    await context.close()


async def test_guard_on_a_phone(site, browser):
    """At phone size one view shows at a time, nothing overflows sideways, an alert arrives
    live and the incident view takes the whole screen."""
    context, page, watched = await open_page(
        browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    await log_in(page, site.base, "gina")
    await expect(page.locator("#alerts-panel")).to_be_visible()
    await expect(page.locator("#doors-panel")).to_be_hidden()
    await page.tap('.tabs button[data-view="doors"]')
    await expect(page.locator("#doors-panel")).to_be_visible()
    await expect(page.locator("#alerts-panel")).to_be_hidden()
    await site.send("door.opened", "gym")
    await expect(door_card(page, "gym-east").locator(".door-state")).to_have_text("Open")
    await page.tap('.tabs button[data-view="alerts"]')
    await site.send("door.forced", "main")
    alert = page.locator("#alert-list li.alert")
    await expect(alert).to_contain_text("Door forced open: Main entrance")
    await expect(page.locator(".tabs #alert-count")).to_have_text("1")
    await page.screenshot(path=artifact("console-phone.png"))
    await alert.locator("button").tap()
    incident = page.locator("#incident")
    await expect(incident).to_be_visible()
    box = await incident.bounding_box()
    assert box is not None
    assert box["width"] == PHONE["width"]
    await page.screenshot(path=artifact("console-phone-incident.png"))
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    assert watched.errors == []
    await context.close()


async def test_stream_reconnects_and_catches_up_on_what_it_missed(site, browser):
    """When the live stream drops, the console shows it, reconnects by itself and re-fetches
    the alert list, so an alert raised while it was away appears."""
    context, page, watched = await open_page(browser, DESK)
    await log_in(page, site.base, "gina")
    hub = site.daemon.hub
    assert hub.clients == 1
    # Drop the console's stream the way the hub drops a console that fell behind.
    for client in list(hub._clients):
        hub.unsubscribe(client)
        client.overflowed.set()
    await site.daemon.alerts.store.raise_alert(
        AlertRequest(
            rule="duress",
            rule_type="duress",
            subject="door:main",
            severity=Severity.CRITICAL,
            title="Duress code at Main entrance",
            at=datetime.now(UTC),
            trigger="duress-1",
            door="main",
            door_name="Main entrance",
            momentary=True,
        )
    )
    await expect(page.locator("#alert-list")).to_contain_text(
        "Duress code at Main entrance", timeout=10_000
    )
    await expect(page.locator("#conn")).to_have_text("Live")
    # Caught up, not seen live, and still critical: it sounds.
    await expect(page.locator("body")).to_have_attribute("data-beeps", "1")
    await eventually(lambda: asyncio.sleep(0, hub.clients == 1), what="a new stream")
    # Live again after the catch-up.
    await site.send("door.forced", "gym")
    await expect(page.locator("#alert-list")).to_contain_text("Door forced open: Gym east")
    await expect(page.locator("body")).to_have_attribute("data-beeps", "2")
    assert watched.errors == []
    await context.close()


async def test_an_ended_session_returns_to_the_login_form(site, browser):
    """When the session ends on the server (expiry, logout elsewhere), the next request sends
    the console back to the login form with a notice; logging in again works."""
    context, page, watched = await open_page(browser, DESK)
    await log_in(page, site.base, "gina")
    (cookie,) = [c for c in await context.cookies() if c["name"] == "doorwatch_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it
    await site.daemon.accounts.logout(cookie["value"])
    await page.click('.tabs button[data-view="events"]')
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#login-notice")).to_contain_text("session has ended")
    await expect(page.locator("#app-view")).to_be_hidden()
    await log_in(page, site.base, "gina")
    await page.click("#logout")
    await expect(page.locator("#login-notice")).to_have_text("You are logged out.")
    await page.reload()
    await expect(page.locator("#login-view")).to_be_visible()
    # The failed /api/v1/session probe at start is expected, not an error of ours.
    assert [e for e in watched.errors if "401" not in e] == []
    await context.close()


async def test_wrong_password_shows_the_server_message(site, browser):
    """A failed login stays on the form and says why."""
    context, page, watched = await open_page(browser, DESK)
    await page.goto(site.base + "/")
    await page.fill("#login-name", "gina")
    await page.fill("#login-password", "not the password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).to_have_text("wrong name or password")
    await expect(page.locator("#app-view")).to_be_hidden()
    assert [e for e in watched.errors if "401" not in e] == []
    await context.close()
