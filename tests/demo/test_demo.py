"""``doorwatch demo`` as a newcomer runs it: a subprocess with no config, logged into through
the API with the printed credentials, showing a propped door and a forced door within 90 s,
then stopped with Ctrl-C (SIGINT) and exiting 0."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def read_banner(process: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, str]:
    """The lines the demo prints before it plays the school day: URL and passwords."""
    assert process.stdout is not None
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not {"url", "sro", "guard"} <= found.keys():
        line = process.stdout.readline()
        if not line:
            break
        if "console on " in line:
            found["url"] = line.split("console on ", 1)[1].strip()
        for role in ("sro", "guard"):
            if line.startswith(f"{role}: "):
                found[role] = line.split(": ", 1)[1].strip()
    return found


class Console:
    """A logged-in API client (cookie session)."""

    def __init__(self, base: str, name: str, password: str) -> None:
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        body = json.dumps({"name": name, "password": password}).encode()
        request = urllib.request.Request(  # noqa: S310 - the demo's local http URL.
            self.base + "/api/v1/login",
            data=body,
            headers={"Content-Type": "application/json", "Origin": self.base},
        )
        with self.opener.open(request, timeout=5) as response:
            assert response.status == 200

    def get(self, path: str) -> object:
        with self.opener.open(self.base + path, timeout=5) as response:
            return json.loads(response.read())


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_raises_propped_and_forced_door_alerts_and_stops_on_ctrl_c(
    tmp_path: Path, broker: str
):
    """With mosquitto installed, and with the embedded amqtt a machine without it gets."""
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path), "DOORWATCH_DEMO_BROKER": broker}
    process = subprocess.Popen(
        [sys.executable, "-m", "doorwatch", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        banner = read_banner(process)
        assert {"url", "sro", "guard"} <= banner.keys(), banner
        assert banner["url"] == f"http://127.0.0.1:{port}/"
        sro = Console(banner["url"], "sro", banner["sro"])
        rules: set[str] = set()
        pictured: set[str] = set()
        # The forced kitchen door has a camera: its alert carries the fake camera's JPEG.
        # Someone covers the gym camera 35 s into the school day.
        expected = {"door_held_open", "door_forced_open", "camera_tamper"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            alerts = sro.get("/api/v1/alerts?state=all")
            assert isinstance(alerts, dict)
            rules = {a["rule"] for a in alerts["alerts"]}
            pictured = {a["rule"] for a in alerts["alerts"] if a["has_snapshot"]}
            if expected <= rules and "door_forced_open" in pictured:
                break
            time.sleep(1)
        assert expected <= rules, rules
        assert "door_forced_open" in pictured, pictured
        # The guard account works too, and the door board lists the demo's doors.
        guard = Console(banner["url"], "guard", banner["guard"])
        doors = guard.get("/api/v1/doors")
        assert isinstance(doors, dict)
        assert {"main-entrance", "gym-east"} <= {d["door"] for d in doors["doors"]}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        output = process.stdout.read() if process.stdout else ""
        if process.stdout:
            process.stdout.close()
    assert code == 0, output[-3000:]
    # Nothing left behind outside the temporary directory it was given.
    assert not list(tmp_path.glob("doorwatch-demo-*")), "the demo's temp dir was not removed"
