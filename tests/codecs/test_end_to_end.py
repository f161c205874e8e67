"""Each codec end to end: mosquitto -> the daemon (in this process) -> the journal, site doors.

The daemon is built from a config with one controller per test and run until the test ends;
samples are published with a real MQTT client and the journal is polled with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as paho
import pytest
from conftest import Publisher, free_port
from paho.mqtt.enums import CallbackAPIVersion
from samples import (
    AXIS_DOOR_TOKEN,
    ESP_HEARTBEAT,
    ESP_TAMPERED,
    UHPPOTED_NO_RESPONSE,
    Z2M_SONOFF,
    axis_event,
    uhppoted_envelope,
    uhppoted_event,
)

from doorwatch.events import Event

pytestmark = pytest.mark.broker

SLUG = "codec-high"


class StatusWatcher:
    """Waits for the daemon's retained ``online`` status: it is published right after the
    daemon subscribes, on the same connection, so once it is seen the subscriptions hold."""

    def __init__(self, port: int) -> None:
        self.online = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="status-watcher")
        self.client.on_message = lambda _c, _u, message: (
            self.online.set() if message.payload == b"online" else None
        )
        self.client.on_connect = lambda client, *_: client.subscribe(f"doorwatch/{SLUG}/status")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    async def wait(self, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.online.is_set():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the daemon never announced itself online")
            await asyncio.sleep(0.02)
        close(self.client)


def close(client: paho.Client) -> None:
    """Disconnect first: it wakes paho's network thread, so stopping it is immediate."""
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def publisher(broker):
    """A QoS 1 publisher (conftest's), closed without waiting out paho's select timeout."""
    p = Publisher(broker.port)
    yield p
    close(p.client)


@pytest.fixture
def site(running_daemon, broker, tmp_path):
    """Start a daemon with the given controllers block and wait until it is subscribed."""

    async def start(controllers: str):
        watcher = StatusWatcher(broker.port)
        daemon = await running_daemon(
            textwrap.dedent(
                f"""
            site: {{name: Codec High, timezone: America/Chicago}}
            mqtt: {{url: "{broker.url}", client_id: dw-codecs, keepalive: 5}}
            storage: {{path: {tmp_path / "doorwatch.db"}}}
            doors:
              - {{id: front, name: Front entrance}}
              - {{id: back, name: Back door}}
              - {{id: gym, name: Gym exit}}
            console: {{listen: "127.0.0.1:{free_port()}"}}
            """
            )
            + textwrap.dedent(controllers)
        )
        await watcher.wait()
        return daemon

    return start


async def journaled(
    daemon, predicate: Callable[[list[Event]], bool], timeout: float = 10.0
) -> list[Event]:
    """Poll the journal (oldest first) until ``predicate`` holds, or fail at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = [item.event for item in reversed(await daemon.journal.recent(limit=200))]
        if predicate(events):
            return events
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"journal after {timeout}s: {[e.to_json() for e in events]}")
        await asyncio.sleep(0.05)


def count(n: int) -> Callable[[list[Event]], bool]:
    return lambda events: len(events) >= n


async def test_uhppoted_event_and_alert_reach_the_site_door(site, broker, publisher):
    """A retained event published before the daemon starts is replayed state; a live door
    event lands on the mapped site door; a no-response alert marks the controller offline."""
    publisher.publish(
        "uhppoted/gateway/events/live",
        uhppoted_envelope(uhppoted_event(**{"event-id": 68, "event-reason": 24, "event-type": 2})),
        retain=True,
    )
    daemon = await site(
        """
        controllers:
          - id: uhppote
            codec: uhppoted
            topics: ["uhppoted/gateway/events/live", "uhppoted/gateway/system"]
            doors: {"405419896:1": front}
        """
    )
    publisher.publish(
        "uhppoted/gateway/events/live",
        uhppoted_envelope(uhppoted_event(**{"event-id": 69, "event-reason": 23, "event-type": 2})),
    )
    publisher.publish("uhppoted/gateway/system", json.dumps(UHPPOTED_NO_RESPONSE))
    retained, opened, offline = await journaled(daemon, count(3))
    assert (retained.kind.value, retained.door, retained.replayed, retained.dedupe_key) == (
        "door.closed",
        "front",
        True,
        "uhppoted:405419896:68",
    )
    assert (opened.kind.value, opened.door, opened.door_ref, opened.replayed, opened.source) == (
        "door.opened",
        "front",
        "405419896:1",
        False,
        "uhppote",
    )
    assert opened.dedupe_key == "uhppoted:405419896:69"
    assert (offline.kind.value, offline.device, offline.door) == (
        "device.offline",
        "405419896",
        None,
    )
    assert daemon.state.door("front").position.value == "open"


async def test_esp_rfid_tamper_is_a_forced_door(site, publisher):
    """The README's tamper event arrives as door.forced at the site door mapped from the
    hostname."""
    daemon = await site(
        """
        controllers:
          - id: esp
            codec: esp-rfid
            topics: ["esp-rfid/+/send"]
            doors: {"your esp-rfid hostname": back}
        """
    )
    publisher.publish("esp-rfid/a1b2c3/send", ESP_TAMPERED)
    (event,) = await journaled(daemon, count(1))
    assert (event.kind.value, event.door, event.device, event.source) == (
        "door.forced",
        "back",
        "your esp-rfid hostname",
        "esp",
    )
    assert event.device_time is not None
    assert event.dedupe_key.startswith("esprfid:your esp-rfid hostname:WARN:1605991375:")


async def test_zigbee2mqtt_contact_changes_reach_the_site_door(site, publisher):
    """SNZB-04's first report is replayed state (open); its close is a live door.closed on the
    mapped door; a repeated report is a heartbeat, not another door event."""
    daemon = await site(
        """
        controllers:
          - id: zigbee
            codec: zigbee2mqtt
            topics: ["zigbee2mqtt/#"]
            doors: {"Sonoff W1": gym}
        """
    )
    closed = json.loads(Z2M_SONOFF) | {"contact": True}
    publisher.publish("zigbee2mqtt/Sonoff W1", Z2M_SONOFF)
    publisher.publish("zigbee2mqtt/Sonoff W1", json.dumps(closed))
    publisher.publish("zigbee2mqtt/Sonoff W1", json.dumps(closed | {"linkquality": 40}))
    first, second, third = await journaled(daemon, count(3))
    assert (first.kind.value, first.door, first.replayed) == ("door.opened", "gym", True)
    assert (second.kind.value, second.door, second.replayed) == ("door.closed", "gym", False)
    assert (third.kind.value, third.door, third.device) == ("device.heartbeat", None, "Sonoff W1")
    assert daemon.state.door("gym").position.value == "closed"


async def test_axis_forced_open_alarm_reaches_the_site_door(site, publisher):
    """An Axis DoorAlarm DoorForcedOpen is door.forced on the door mapped from its DoorToken,
    with the device's UTC time."""
    daemon = await site(
        f"""
        controllers:
          - id: axis
            codec: axis
            topics: ["axis/#"]
            doors: {{"{AXIS_DOOR_TOKEN}": front}}
        """
    )
    publisher.publish(
        "axis/B8A44F000001/event/tns:onvif/Door/State/DoorAlarm",
        axis_event(
            "onvif:Door/State/DoorAlarm",
            {"DoorToken": AXIS_DOOR_TOKEN},
            {"State": "DoorForcedOpen"},
        ),
    )
    (event,) = await journaled(daemon, count(1))
    assert (event.kind.value, event.door, event.device) == ("door.forced", "front", "B8A44F000001")
    assert event.device_time == datetime(2026, 7, 29, 11, 39, 10, 144000, tzinfo=UTC)


async def test_shelly_open_close_reach_the_site_door(site, publisher):
    """Shelly's plain open/close strings become door events on the mapped door."""
    daemon = await site(
        """
        controllers:
          - id: dw
            codec: shelly
            topics: ["shellies/+/sensor/state"]
            doors: {shellydw2-A1B2C3: back}
        """
    )
    publisher.publish("shellies/shellydw2-A1B2C3/sensor/state", "close")
    publisher.publish("shellies/shellydw2-A1B2C3/sensor/state", "open")
    first, second = await journaled(daemon, count(2))
    assert (first.kind.value, first.door, first.replayed) == ("door.closed", "back", True)
    assert (second.kind.value, second.door, second.replayed) == ("door.opened", "back", False)


async def test_mapping_plain_payload_reaches_the_site_door(site, publisher):
    """A configured mapping turns a plain OPEN on a topic naming the door into door.opened on
    the mapped site door."""
    daemon = await site(
        """
        controllers:
          - id: panel
            codec: mapping
            topics: ["panel/+/door/+"]
            doors: {east: gym}
            match: "panel/{device}/door/{door}"
            device: $topic.device
            door: $topic.door
            kinds: {$payload: {OPEN: door.opened, CLOSED: door.closed}}
        """
    )
    publisher.publish("panel/p1/door/east", "OPEN")
    (event,) = await journaled(daemon, count(1))
    assert (event.kind.value, event.door, event.door_ref, event.device, event.source) == (
        "door.opened",
        "gym",
        "east",
        "p1",
        "panel",
    )


async def test_heartbeat_silence_gives_offline_then_online(site, publisher):
    """With a short heartbeat timeout, an esp-rfid reader that stops heartbeating is journaled
    device.offline; its next heartbeat brings device.online."""
    daemon = await site(
        """
        controllers:
          - id: esp
            codec: esp-rfid
            topics: ["esp-rfid/+/send"]
            heartbeat_timeout: 0.5
        """
    )
    publisher.publish("esp-rfid/a1b2c3/send", ESP_HEARTBEAT)

    def kinds(events: list[Event]) -> list[str]:
        return [e.kind.value for e in events]

    await journaled(daemon, lambda events: kinds(events) == ["device.heartbeat", "device.offline"])
    later = json.loads(ESP_HEARTBEAT) | {"time": 1605991555, "uptime": 1179}
    publisher.publish("esp-rfid/a1b2c3/send", json.dumps(later))
    events = await journaled(
        daemon,
        lambda events: (
            kinds(events)
            == ["device.heartbeat", "device.offline", "device.heartbeat", "device.online"]
        ),
    )
    offline, online = events[1], events[3]
    assert (offline.source, offline.device, offline.replayed) == (
        "esp",
        "your esp-rfid hostname",
        False,
    )
    assert offline.reason is not None
    assert "heartbeat_timeout 0.5 s" in offline.reason
    assert (online.source, online.device) == ("esp", "your esp-rfid hostname")
    assert daemon.state.device("esp", "your esp-rfid hostname").online is True
