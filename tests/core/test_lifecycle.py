"""The process: clean stop on SIGTERM/SIGINT, systemd notify, secrets kept out of logs."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
from conftest import wait_healthy, wait_until

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_within_five_seconds(sig, broker, site_config, daemon_factory):
    """SIGTERM (systemd) and SIGINT (Ctrl-C) stop the daemon with exit 0 in under 5 s."""
    config = site_config()
    daemon = daemon_factory(config)
    wait_healthy(config)
    started = time.monotonic()
    assert daemon.stop(sig, timeout=5) == 0
    assert time.monotonic() - started < 5
    assert "doorwatch stopped" in daemon.logs()


def test_systemd_notify_ready_watchdog_status_stopping(
    broker, site_config, daemon_factory, tmp_path
):
    """Under systemd the daemon sends READY=1 with a STATUS, WATCHDOG=1 pings at half the
    watchdog interval, and STOPPING=1 when asked to stop."""
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(0.2)
    received: list[str] = []

    def drain() -> list[str]:
        try:
            while True:
                received.append(listener.recv(4096).decode())
        except TimeoutError:
            return received

    config = site_config()
    daemon = daemon_factory(config, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    wait_until(lambda: any("READY=1" in m for m in drain()), what="READY=1")
    ready = next(m for m in received if "READY=1" in m)
    assert "STATUS=" in ready
    wait_until(
        lambda: sum("WATCHDOG=1" in m for m in drain()) >= 3, timeout=5, what="3 watchdog pings"
    )
    assert daemon.stop() == 0
    wait_until(lambda: any("STOPPING=1" in m for m in drain()), timeout=2, what="STOPPING=1")
    listener.close()


def test_password_never_reaches_the_log(broker, site_config, daemon_factory, tmp_path, publisher):
    """The MQTT password is read from its file and never printed; card numbers are masked."""
    secret = "s3cr3t-P4ssw0rd-xyz"
    (tmp_path / "mqtt.pass").write_text(secret + "\n")
    config = site_config()
    text = config.read_text().replace(
        "keepalive: 5}", f"keepalive: 5, username: dw, password_file: {tmp_path / 'mqtt.pass'}}}"
    )
    config.write_text(text)
    daemon = daemon_factory(config)
    wait_healthy(config)
    publisher.publish(
        "site/a/events", b'{"kind": "access.granted", "credential": "8165537123", "bogus": 1}'
    )
    wait_until(lambda: "dead-lettered" in daemon.logs(), what="the bad event logged")
    assert daemon.stop() == 0
    log = daemon.logs()
    assert secret not in log
    assert "8165537123" not in log
    for line in log.splitlines():
        json.loads(line)  # Not a terminal: every line is JSON for journald.
