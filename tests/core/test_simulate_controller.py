"""``doorwatch simulate controller`` against a real broker and a real daemon: what it
publishes is what the codecs understand, mapped to the site's doors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import journal_rows, wait_healthy, wait_until

pytestmark = pytest.mark.broker

SCENARIO = """\
steps:
  - {at: 0s, action: swipe, door: "405419896:1", card: 8165537, name: Ann Lee}
  - {at: 0.2s, action: open, door: "405419896:1"}
  - {at: 0.4s, action: close, door: "405419896:1"}
  - {at: 0.6s, action: forced, door: "405419896:2"}
  - {at: 0.8s, action: offline, device: "405419896"}
"""

CONTROLLERS = """
controllers:
  - id: uhppote
    codec: uhppoted
    topics: ["uhppoted/gateway/events/live", "uhppoted/gateway/system"]
    doors: {"405419896:1": main, "405419896:2": gym-east}
"""


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doorwatch", "simulate", "controller", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_uhppoted_scenario_reaches_the_journal_as_site_events(
    broker, site_config, daemon_factory, tmp_path
):
    config = site_config(controllers=CONTROLLERS)
    daemon_factory(config)
    wait_healthy(config)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    result = simulate("--format", "uhppoted", "--broker", broker.url, "--scenario", str(scenario))
    assert result.returncode == 0, result.stderr
    assert "published 5 message(s)" in result.stdout
    db = tmp_path / "doorwatch.db"
    rows = wait_until(
        lambda: (
            (r := journal_rows(db, "SELECT kind, door FROM events ORDER BY seq"))
            and len(r) >= 5
            and r
        ),
        what="five journaled events",
    )
    assert rows[:5] == [
        ("access.granted", "main"),
        ("door.opened", "main"),
        ("door.closed", "main"),
        ("door.forced", "gym-east"),
        ("device.offline", None),
    ]


def test_bad_arguments_are_explained(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [{at: 0s, action: swipe, device: x}]\n")
    result = simulate(
        "--format", "zigbee2mqtt", "--broker", "mqtt://127.0.0.1:1", "--scenario", str(bad)
    )
    assert result.returncode == 2
    assert "zigbee2mqtt has no 'swipe'" in result.stderr
    result = simulate("--format", "uhppoted", "--broker", "http://example")
    assert result.returncode == 2
    assert "mqtt://host[:port]" in result.stderr
