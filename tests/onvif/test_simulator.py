"""``doorwatch simulate camera``: the fake cameras as a process, its HTTP control API and
scripts, and 50 fake cameras from one process feeding one daemon (with CPU/RSS figures)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port, http_get, journal_rows, wait_until
from onvif_fixtures import free_port_block


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - local test URL.
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextmanager
def simulator(*args: str, count: int = 1):
    """Run ``doorwatch simulate camera`` and wait for its ready line; yield (process, port)."""
    port = free_port_block(count)
    process = subprocess.Popen(
        [sys.executable, "-m", "doorwatch", "simulate", "camera", "--port", str(port),
         "--count", str(count), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines = []
        while True:
            line = process.stdout.readline().decode()
            assert line, f"simulator exited: {''.join(lines)}"
            lines.append(line)
            if line.startswith("simulating"):
                break
        assert len(lines) == count + 1
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        process.stdout.close()


def stats(port: int) -> dict:
    status, body = http_get(f"http://127.0.0.1:{port}/_sim/stats")
    assert status == 200
    return json.loads(body)


def test_help_lists_camera_target_and_faults():
    """``simulate --help`` offers the camera target; ``simulate camera --help`` lists faults."""
    top = subprocess.run(
        [sys.executable, "-m", "doorwatch", "simulate", "--help"], capture_output=True, check=True
    )
    assert b"camera" in top.stdout
    camera = subprocess.run(
        [sys.executable, "-m", "doorwatch", "simulate", "camera", "--help"],
        capture_output=True,
        check=True,
    )
    text = b" ".join(camera.stdout.split())
    for fault in (b"renew-fails", b"instant-empty", b"state-one", b"html-401", b"hang", b"storm"):
        assert fault in text


def test_unknown_fault_is_refused_in_one_line():
    """A misspelt fault exits 2 with one line naming the known faults."""
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "simulate", "camera", "--port", "1", "--fault", "nope"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert b"renew-fails" in result.stderr


def test_control_api_switches_faults_and_queues_events():
    """POST /_sim/fault switches faults (bad names refused), POST /_sim/event validates and
    queues events, GET /_sim/stats reports; SIGTERM stops the simulator with exit 0."""
    with simulator("--fault", "state-one", "--fault", "clock-skew=12") as (process, port):
        base = f"http://127.0.0.1:{port}"
        faults = stats(port)["faults"]
        assert faults["numeric_bools"] is True
        assert faults["clock_skew"] == 12.0
        assert post(base + "/_sim/fault", {"renew_fails": True})[1]["renew_fails"] is True
        assert post(base + "/_sim/fault", {"no_such": 1})[0] == 400
        status, body = post(
            base + "/_sim/event",
            {"topic": "tns1:VideoSource/MotionAlarm", "source": {"Source": "1"},
             "data": {"State": True}},
        )  # fmt: skip
        assert (status, body["queued"]) == (200, 1)
        assert post(base + "/_sim/event", {"data": {}})[0] == 400
        assert post(base + "/_sim/event", {"topic": "x", "source": []})[0] == 400
        assert post(base + "/_sim/event", {"topic": "x", "operation": "Sometimes"})[0] == 400
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_script_drives_events_into_a_daemon(tmp_path):
    """A looping script (input active then inactive on camera 2 of 2) reaches the daemon's
    journal as door.opened for camera 2's door only."""
    script = tmp_path / "events.yaml"
    script.write_text(
        textwrap.dedent(
            """
            repeat: true
            steps:
              - {at: 0.2s, camera: 2, topic: "tns1:Device/Trigger/DigitalInput",
                 source: {InputToken: AlarmIn_1}, data: {LogicalState: true}}
              - {at: 0.4s, camera: 2, topic: "tns1:Device/Trigger/DigitalInput",
                 source: {InputToken: AlarmIn_1}, data: {LogicalState: false}}
            """
        )
    )
    with (
        simulator("--events", str(script), count=2) as (_process, port),
        daemon(tmp_path, [port, port + 1], pull_timeout="2s") as (_proc, db),
    ):
        wait_until(
            lambda: journal_rows(
                db, "SELECT camera, door FROM events WHERE kind='door.opened' AND replayed=0"
            ),
            30,
            what="scripted door.opened",
        )
        rows = journal_rows(
            db,
            "SELECT DISTINCT camera, door FROM events WHERE kind IN "
            "('door.opened', 'door.closed') AND replayed=0",
        )
        assert rows == [("cam-2", "door-2")]


@contextmanager
def daemon(tmp_path: Path, ports: list[int], **camera_options: str):
    """``doorwatch run`` with one camera per port (cam-N -> door-N); yields (process, db)."""
    secret = tmp_path / "cam.pass"
    secret.write_text("admin")
    options = "".join(f", {k}: {v}" for k, v in camera_options.items())
    doors = "\n".join(f"  - {{id: door-{i}, name: Door {i}}}" for i in range(1, len(ports) + 1))
    cameras = "\n".join(
        f"  - {{id: cam-{i}, host: 127.0.0.1, port: {port}, username: admin, "
        f"password_file: {secret}, inputs: {{AlarmIn_1: door-{i}}}{options}}}"
        for i, port in enumerate(ports, start=1)
    )
    db = tmp_path / "doorwatch.db"
    config = tmp_path / "doorwatch.yaml"
    config.write_text(
        f"site: {{name: Test High, timezone: America/Chicago}}\n"
        f"storage: {{path: {db}}}\n"
        f'console: {{listen: "127.0.0.1:{free_port()}"}}\n'
        f"doors:\n{doors}\ncameras:\n{cameras}\n"
    )
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorwatch", "run", "-c", str(config)], stdout=log, stderr=log
        )
    try:
        yield process, db
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process in MiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


CAMERAS = 50


@pytest.mark.slow
def test_fifty_cameras_from_one_process_feed_one_daemon(tmp_path):
    """One simulator process serves 50 fake cameras; one daemon subscribes to all of them
    (production timings: 60 s long-polls), and 4 events from each camera are journaled.
    The daemon's CPU time and RSS are measured and printed for the issue note."""
    with simulator(count=CAMERAS) as (_sim, port):
        ports = [port + i for i in range(CAMERAS)]
        with daemon(tmp_path, ports) as (process, db):
            started = time.monotonic()
            online = "SELECT COUNT(DISTINCT camera) FROM events WHERE kind='device.online'"
            wait_until(
                lambda: journal_rows(db, online) == [(CAMERAS,)], 60, what="50 cameras online"
            )
            wait_until(
                lambda: all(stats(p)["requests"].get("PullMessages", 0) >= 2 for p in ports),
                30,
                what="every camera long-polled",
            )
            startup = time.monotonic() - started
            cpu_startup = cpu_seconds(process.pid)
            sent = time.monotonic()
            for p in ports:
                for state in (True, False):
                    for topic, source, item in (
                        ("tns1:Device/Trigger/DigitalInput", {"InputToken": "AlarmIn_1"}, "LogicalState"),
                        ("tns1:VideoSource/MotionAlarm", {"Source": "VideoSource_1"}, "State"),
                    ):  # fmt: skip
                        status, _ = post(
                            f"http://127.0.0.1:{p}/_sim/event",
                            {"topic": topic, "source": source, "data": {item: state}},
                        )
                        assert status == 200
            live = (
                "SELECT COUNT(*) FROM events WHERE replayed=0 AND kind IN "
                "('door.opened','door.closed','camera.motion','camera.motion_stopped')"
            )
            wait_until(
                lambda: journal_rows(db, live) == [(CAMERAS * 4,)], 60, what="200 live events"
            )
            delivery = time.monotonic() - sent
            per_camera = journal_rows(
                db,
                "SELECT camera, door, COUNT(*) FROM events WHERE replayed=0 AND "
                "kind IN ('door.opened','door.closed') GROUP BY camera, door",
            )
            assert sorted(per_camera) == sorted(
                (f"cam-{i}", f"door-{i}", 2) for i in range(1, CAMERAS + 1)
            )
            cpu_events = cpu_seconds(process.pid) - cpu_startup
            # Measurement windows, not synchronisation: let the last pulls' cooldowns pass,
            # then measure CPU over 5 s of 50 cameras long-polling with nothing to say.
            time.sleep(2.0)
            idle_from = cpu_seconds(process.pid)
            time.sleep(5.0)
            idle = (cpu_seconds(process.pid) - idle_from) / 5.0
            rss, peak = memory_mb(process.pid)
            assert not journal_rows(db, "SELECT 1 FROM events WHERE kind='device.offline'")
            report = (
                f"50-camera figures (daemon process): all online and long-polling in "
                f"{startup:.1f} s using {cpu_startup:.2f} s CPU; 200 events journaled "
                f"{delivery:.2f} s after sending using {cpu_events:.2f} s CPU; idle CPU "
                f"{idle * 100:.1f} % of one core; RSS {rss:.0f} MiB (peak {peak:.0f} MiB)"
            )
            print(report)
            (Path(__file__).parent.parent.parent / "test-artifacts").mkdir(exist_ok=True)
            (
                Path(__file__).parent.parent.parent / "test-artifacts" / "onvif-50-cameras.txt"
            ).write_text(report + "\n")
            assert idle < 0.1, report
            assert rss < 400, report
