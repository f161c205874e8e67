"""The event log follows the journal live: ``events`` messages on the stream, coalesced.

The browser test runs a daemon in this process with a real mosquitto; events are published
as a controller would, so what the open event log shows went through the whole pipeline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from conftest import Publisher, free_port
from playwright.async_api import Browser, Page, expect

from doorwatch.accounts import Role
from doorwatch.events import Event, EventKind
from doorwatch.journal import JournaledEvent
from doorwatch.web.stream import EventFeed, Hub

PASSWORD = "correct horse battery"
DESK = {"width": 1366, "height": 900}
_keys = itertools.count(1)


def journaled(seq: int, kind: EventKind = EventKind.ACCESS_GRANTED) -> JournaledEvent:
    event = Event(
        kind=kind,
        source="gen",
        door="gym-east",
        credential="****5537",
        received_at=datetime(2026, 1, 15, 18, 0, tzinfo=UTC) + timedelta(seconds=seq),
        dedupe_key=f"k-{seq}",
    )
    return JournaledEvent(seq, event)


# ---- the feed --------------------------------------------------------------------------


async def test_the_feed_sends_one_message_per_interval_with_the_newest_events():
    """Batches within an interval become one message in journal order; past the cap only
    the newest are rendered and the rest are counted, so the console knows to reload."""
    hub = Hub()
    client = hub.subscribe()
    feed = EventFeed(hub, interval=0.05, per_message=3)
    await feed([journaled(1), journaled(2)])
    await feed([journaled(3)])
    await asyncio.sleep(0.15)
    assert client.queue.qsize() == 1
    _, topic, data = client.queue.get_nowait()
    assert topic == "events"
    assert [e["seq"] for e in data["events"]] == [1, 2, 3]
    assert data["omitted"] == 0
    assert data["events"][0]["credential"] == "****5537"
    assert data["events"][0]["kind"] == "access.granted"

    # A burst: 1,000 events in two batches are still one message of the newest three.
    await feed([journaled(n) for n in range(4, 504)])
    await feed([journaled(n) for n in range(504, 1004)])
    await asyncio.sleep(0.15)
    assert client.queue.qsize() == 1
    _, _, data = client.queue.get_nowait()
    assert [e["seq"] for e in data["events"]] == [1001, 1002, 1003]
    assert data["omitted"] == 997


async def test_the_feed_renders_nothing_without_consoles():
    """No console connected: batches are dropped before any JSON is made."""
    hub = Hub()
    feed = EventFeed(hub, interval=0.01)
    await feed([journaled(1)])
    feed.flush()
    client = hub.subscribe()
    await asyncio.sleep(0.05)
    assert client.queue.empty()


async def test_a_flood_of_batches_does_not_disconnect_a_console():
    """Thousands of small batches (one event each) stay far inside a console's queue."""
    hub = Hub()
    client = hub.subscribe()
    feed = EventFeed(hub, interval=0.05)
    for seq in range(1, 5001):
        await feed([journaled(seq)])
    await asyncio.sleep(0.15)
    assert not client.overflowed.is_set()
    assert hub.clients == 1
    messages = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert sum(len(d["events"]) + d["omitted"] for _, _, d in messages) == 5000
    assert messages[-1][2]["events"][-1]["seq"] == 5000


# ---- the stream ------------------------------------------------------------------------


async def test_every_role_receives_events_on_the_stream_as_the_api_shows_them(
    running_daemon, tmp_path
):
    """The event log API is open to every role, audiences aside; so is the stream's
    ``events`` message: a guard limited to one audience receives a new event, rendered as
    the API renders it (journal seq, masked card)."""
    daemon = await running_daemon(f"""
        site: {{name: Test High, timezone: America/Chicago}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """)
    await daemon.accounts.add_user("east", Role.GUARD, PASSWORD, ("guards-east",))
    base = f"http://127.0.0.1:{daemon.config.console.port}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"name": "east", "password": PASSWORD}
        async with http.post(f"{base}/api/v1/login", json=login) as r:
            assert r.status == 200
        async with http.get(f"{base}/api/v1/stream") as stream:
            assert stream.status == 200
            await asyncio.wait_for(stream.content.readline(), 5)  # "retry:" once subscribed
            event = journaled(1).event.replace(received_at=datetime.now(UTC), dedupe_key="s-1")
            await daemon.pipeline.submit([event])

            async def next_events() -> dict[str, Any]:
                topic = ""
                async for line in stream.content:
                    if line.startswith(b"event: "):
                        topic = line[7:].strip().decode()
                    elif line.startswith(b"data: ") and topic == "events":
                        data: dict[str, Any] = json.loads(line[6:])
                        return data
                raise AssertionError("stream ended")

            message = await asyncio.wait_for(next_events(), 5)
        async with http.get(f"{base}/api/v1/events?limit=1") as r:
            (shown,) = (await r.json())["events"]
    assert message["omitted"] == 0
    assert message["events"] == [shown]
    assert shown["credential"] == "****5537"


# ---- the console -----------------------------------------------------------------------


@pytest.fixture
async def site(running_daemon, broker, publisher, tmp_path):
    body = f"""
        site: {{name: Test High, timezone: America/Chicago}}
        mqtt: {{url: "{broker.url}", client_id: dw-live-{free_port()}, keepalive: 5}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors:
          - {{id: gym-east, name: Gym east, zone: athletics}}
          - {{id: main, name: Main entrance, zone: front}}
        controllers:
          - id: gen
            codec: generic
            topics: ["site/+/events"]
            doors: {{"gym": gym-east, "main": main}}
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """
    daemon = await running_daemon(textwrap.dedent(body))
    await daemon.accounts.add_user("gina", Role.GUARD, PASSWORD)

    # The daemon subscribes after connecting: publish until an event is seen to arrive.
    deadline = asyncio.get_running_loop().time() + 15
    while daemon.state.door("main").position.value != "closed":
        assert asyncio.get_running_loop().time() < deadline, "the daemon receives no MQTT"
        await send(publisher, "door.closed", "main")
        await asyncio.sleep(0.2)
    return daemon, f"http://127.0.0.1:{daemon.config.console.port}", publisher


async def send(publisher: Publisher, kind: str, door: str, **fields: Any) -> None:
    """Publish a generic-codec event as a controller would."""
    payload = {"kind": kind, "door": door, "dedupe_key": f"live-{next(_keys)}", **fields}
    await asyncio.to_thread(publisher.publish, f"site/{door}/events", json.dumps(payload))


async def open_event_log(browser: Browser, base: str) -> tuple[Any, Page, list[str]]:
    context = await browser.new_context(viewport=DESK, locale="en-US")
    page = await context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/")
    await page.fill("#login-name", "gina")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#conn")).to_have_text("Live")
    await page.click('.tabs button[data-view="events"]')
    await expect(page.locator("#event-rows tr").first).to_be_visible()
    return context, page, errors


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.slow
async def test_new_events_appear_in_the_open_event_log_without_a_reload(site, browser):
    """An access event and a device going offline, published over MQTT, appear on top of
    the open log (card masked) without any request for the log; with a kind filter applied,
    only matching events are added."""
    daemon, base, publisher = site
    context, page, errors = await open_event_log(browser, base)
    await page.evaluate("window.__noReload = true")
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url) if "/api/v1/events" in r.url else None)

    await send(
        publisher, "access.granted", "gym", holder="Pat Doe", credential="8165537", direction="in"
    )
    top = page.locator("#event-rows tr").first
    await expect(top).to_contain_text("access.granted")
    await expect(top).to_contain_text("Gym east")
    await expect(top).to_contain_text("Pat Doe")
    await expect(top).to_contain_text("****5537")
    assert "8165537" not in await page.locator("#event-rows").inner_text()

    await send(publisher, "device.offline", "main", device="ctl-7")
    await expect(top).to_contain_text("device.offline")
    assert loads == []
    assert await page.evaluate("window.__noReload") is True

    await page.select_option("#filter-kind", "access.denied")
    await page.click('#event-filters button[type="submit"]')
    await expect(page.locator("#events-empty")).to_be_visible()
    await send(publisher, "access.granted", "gym", holder="Not Shown")
    await send(publisher, "access.denied", "main", holder="Lee Roe")
    await expect(top).to_contain_text("Lee Roe")
    await expect(page.locator("#event-rows tr")).to_have_count(1)
    assert "Not Shown" not in await page.locator("#event-rows").inner_text()
    assert errors == []
    await context.close()


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.slow
async def test_a_burst_reloads_the_newest_page(site, browser):
    """More events in an interval than one message carries: the console reloads the newest
    page instead of showing a log with a hole in it."""
    daemon, base, _ = site
    context, page, errors = await open_event_log(browser, base)
    now = datetime.now(UTC)
    burst = [
        Event(
            kind=EventKind.ACCESS_GRANTED,
            source="gen",
            door="gym-east",
            holder=f"Student {n}",
            received_at=now,
            dedupe_key=f"burst-{n}",
        )
        for n in range(300)
    ]
    async with page.expect_request(lambda r: "/api/v1/events" in r.url):
        await daemon.pipeline.submit(burst)
    await expect(page.locator("#event-rows tr").first).to_contain_text("Student 299")
    await expect(page.locator("#event-rows tr")).to_have_count(100)
    await expect(page.locator("#event-rows tr").nth(99)).to_contain_text("Student 200")
    assert errors == []
    await context.close()
