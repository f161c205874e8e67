"""The console shows every time in the site's zone, whatever zone the browser is in.

A daemon runs in this process (no MQTT: events enter through its pipeline, as an adapter's
would, at chosen instants); Debian's Chromium runs in Europe/Berlin for a site in Chicago.
"""

from __future__ import annotations

import itertools
import textwrap
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from conftest import free_port
from playwright.async_api import Browser, Page, expect

from doorwatch.accounts import Role
from doorwatch.alerts.store import AlertRequest
from doorwatch.events import Event, EventKind
from doorwatch.rules.config import Severity

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery"
DESK = {"width": 1366, "height": 900}
SITE_ZONE = "America/Chicago"
_keys = itertools.count(1)


@pytest.fixture
async def daemon(running_daemon, tmp_path) -> Any:
    body = f"""
        site: {{name: Test High, timezone: {SITE_ZONE}}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
          - {{id: main, name: Main entrance, zone: front}}
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """
    daemon = await running_daemon(textwrap.dedent(body))
    await daemon.accounts.add_user("gina", Role.GUARD, PASSWORD)
    return daemon


def base(daemon: Any) -> str:
    return f"http://127.0.0.1:{daemon.config.console.port}"


async def submit(daemon: Any, at: str, *, kind: EventKind, door: str = "gym-east") -> None:
    """Journal one event received at the UTC instant ``at``, through the daemon's pipeline."""
    event = Event(
        kind=kind,
        source="test",
        door=door,
        received_at=datetime.fromisoformat(at),
        dedupe_key=f"tz-{next(_keys)}",
    )
    await daemon.pipeline.submit([event])


async def open_console(browser: Browser, daemon: Any, now: str | None = None):
    """A Berlin browser logged in as a guard; ``now`` fixes the page's clock."""
    context = await browser.new_context(viewport=DESK, timezone_id="Europe/Berlin", locale="en-US")
    page = await context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    if now is not None:
        await page.clock.set_fixed_time(datetime.fromisoformat(now))
    await page.goto(base(daemon) + "/")
    await page.fill("#login-name", "gina")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#conn")).to_have_text("Live")
    return context, page, errors


def rows(page: Page):
    return page.locator("#event-rows tr")


async def test_the_page_carries_the_site_zone(daemon):
    """``GET /`` names the site's zone in a meta element the script reads."""
    async with aiohttp.ClientSession() as http, http.get(base(daemon) + "/") as r:
        page = await r.text()
    assert f'<meta name="doorwatch-timezone" content="{SITE_ZONE}">' in page


async def test_times_show_the_site_wall_clock_and_zone_in_another_zones_browser(daemon, browser):
    """In a Berlin browser, events and alerts show Chicago wall time with "CST"; "today" is
    the site's day (late evening in Chicago is already tomorrow in Berlin); the event log
    says which zone its times are in."""
    # 17:30 in Chicago on 15 January, 00:30 on the 16th in Berlin.
    now = "2026-01-15T23:30:00+00:00"
    await submit(daemon, "2026-01-15T22:00:00+00:00", kind=EventKind.ACCESS_GRANTED)  # 16:00 CST
    await submit(daemon, "2026-01-15T05:00:00+00:00", kind=EventKind.DOOR_OPENED)  # 23:00 on 14th
    await daemon.alerts.store.raise_alert(
        AlertRequest(
            rule="door_held_open",
            rule_type="door_held_open",
            subject="door:gym-east",
            severity=Severity.HIGH,
            title="Door held open: Gym east",
            at=datetime(2026, 1, 15, 21, 5, 9, tzinfo=UTC),
            trigger="held-1",
            door="gym-east",
            door_name="Gym east",
            zone="athletics",
        )
    )
    context, page, errors = await open_console(browser, daemon, now)
    assert await page.evaluate("window.doorwatchTime.zone") == SITE_ZONE
    # The alert was raised on the site's today: time only, with the zone's abbreviation.
    await expect(page.locator("#alert-list .alert-meta")).to_have_text("Gym east · 03:05:09 PM CST")

    await page.click('.tabs button[data-view="events"]')
    await expect(page.locator("#filter-tz")).to_have_text(f"Times in {SITE_ZONE}")
    granted = rows(page).filter(has_text="access.granted")
    await expect(granted.locator("td").first).to_have_text("04:00:00 PM CST")
    opened = rows(page).filter(has_text="door.opened")
    await expect(opened.locator("td").first).to_have_text("1/14/26, 11:00:00 PM CST")
    assert errors == []
    await context.close()


async def test_times_carry_no_zone_when_the_browser_is_in_the_site_zone(daemon, browser):
    """A console at the school (browser in the site's zone) shows plain wall times."""
    await submit(daemon, "2026-01-15T05:00:00+00:00", kind=EventKind.DOOR_OPENED)
    context = await browser.new_context(viewport=DESK, timezone_id=SITE_ZONE, locale="en-US")
    page = await context.new_page()
    await page.goto(base(daemon) + "/")
    await page.fill("#login-name", "gina")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.click('.tabs button[data-view="events"]')
    opened = rows(page).filter(has_text="door.opened")
    await expect(opened.locator("td").first).to_have_text("1/14/26, 11:00:00 PM")
    await context.close()


async def test_filter_times_are_site_wall_times(daemon, browser):
    """Two events an hour apart (11:30 and 12:30 in Chicago): "from 12:00" typed in a Berlin
    browser selects only the later one, "to 12:00" only the earlier one (Berlin's or UTC's
    12:00 would select both, or neither)."""
    await submit(daemon, "2026-01-15T17:30:00+00:00", kind=EventKind.ACCESS_GRANTED)
    await submit(daemon, "2026-01-15T18:30:00+00:00", kind=EventKind.ACCESS_DENIED)
    context, page, errors = await open_console(browser, daemon)
    await page.click('.tabs button[data-view="events"]')
    await expect(rows(page)).to_have_count(2)

    await page.fill("#filter-since", "2026-01-15T12:00")
    await page.fill("#filter-until", "2026-01-15T13:00")
    await page.click('#event-filters button[type="submit"]')
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("access.denied")
    await expect(rows(page).first.locator("td").first).to_have_text("1/15/26, 12:30:00 PM CST")

    await page.fill("#filter-since", "2026-01-15T11:00")
    await page.fill("#filter-until", "2026-01-15T12:00")
    await page.click('#event-filters button[type="submit"]')
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("access.granted")
    await expect(page.locator("#filter-note")).to_be_hidden()
    assert errors == []
    await context.close()


async def test_wall_times_around_daylight_saving_changes(daemon, browser):
    """Chicago's 2026 changes: 02:30 on 8 March never happened (read as 03:30 CDT, and the
    console says so); 01:30 on 1 November happened twice (the first, CDT, is used)."""
    context, page, errors = await open_console(browser, daemon)
    convert = "value => window.doorwatchTime.siteWallToUtc(value)"
    cases = {
        "2026-03-08T01:59": ("2026-03-08T07:59:00.000Z", False),
        "2026-03-08T02:30": ("2026-03-08T08:30:00.000Z", True),  # the gap
        "2026-03-08T03:00": ("2026-03-08T08:00:00.000Z", False),
        "2026-11-01T00:59": ("2026-11-01T05:59:00.000Z", False),
        "2026-11-01T01:30": ("2026-11-01T06:30:00.000Z", True),  # the fold: CDT
        "2026-11-01T02:00": ("2026-11-01T08:00:00.000Z", False),
        "2026-07-01T12:00:30": ("2026-07-01T17:00:30.000Z", False),
    }
    for wall, (iso, noted) in cases.items():
        result = await page.evaluate(convert, wall)
        assert result["iso"] == iso, wall
        assert bool(result["note"]) is noted, wall
    assert await page.evaluate(convert, "not a time") is None

    await submit(daemon, "2026-03-08T08:45:00+00:00", kind=EventKind.DOOR_OPENED)  # 03:45 CDT
    await submit(daemon, "2026-03-08T08:15:00+00:00", kind=EventKind.DOOR_CLOSED)  # 03:15 CDT
    await page.click('.tabs button[data-view="events"]')
    await page.fill("#filter-since", "2026-03-08T02:30")
    await page.fill("#filter-until", "2026-03-08T04:00")
    await page.click('#event-filters button[type="submit"]')
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first.locator("td").first).to_have_text("3/8/26, 3:45:00 AM CDT")
    await expect(page.locator("#filter-note")).to_contain_text("did not happen in America/Chicago")
    await expect(page.locator("#filter-note")).to_contain_text("3:30:00 AM CDT")
    assert errors == []
    await context.close()
