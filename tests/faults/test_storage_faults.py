"""The disk fills up or the database is locked: nothing acknowledged is lost, health says so."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import textwrap

import pytest
from conftest import console_url, free_port, http_get, journal_rows, wait_healthy, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.faults]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs for the database (needs mount rights, which CI's root has)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def config_on(tmp_path, broker, db_path):
    path = tmp_path / "dw.yaml"
    path.write_text(
        textwrap.dedent(f"""
        site: {{name: Full Disk High}}
        mqtt: {{url: "{broker.url}", client_id: dw-full, keepalive: 5}}
        storage: {{path: {db_path}}}
        controllers: [{{id: gen, codec: generic, topics: ["site/#"]}}]
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """)
    )
    return path


def event(key):
    return json.dumps(
        {"kind": "door.opened", "door": "gym", "dedupe_key": key, "reason": "x" * 200}
    )


def test_disk_full_holds_acks_reports_red_and_recovers(
    broker, publisher, tmp_path, daemon_factory, small_disk
):
    """With the disk full the daemon stops acknowledging (the broker keeps the messages),
    /healthz turns red, and once space returns every message is journaled exactly once."""
    db = small_disk / "dw.db"
    config = config_on(tmp_path, broker, db)
    daemon = daemon_factory(config)
    wait_healthy(config)
    filler = small_disk / "filler"
    # Fill the disk to the last byte: dd stops with "No space left on device".
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False
    )
    for i in range(200):
        publisher.publish("site/gym", event(f"full{i}"))
    wait_until(lambda: "journal write failed" in daemon.logs(), what="write failure logged")
    status, body = http_get(console_url(config) + "/healthz")
    assert status == 503
    assert json.loads(body)["checks"]["storage"]["ok"] is False
    filler.unlink()
    wait_until(
        lambda: len(journal_rows(db)) == 200,
        timeout=60,
        what="all 200 journaled after space returns",
    )
    assert len({row[0] for row in journal_rows(db)}) == 200
    wait_healthy(config)
    assert "journal writes recovered" in daemon.logs()


def test_a_locked_database_delays_but_loses_nothing(broker, publisher, tmp_path, daemon_factory):
    """A backup tool holding a write lock for longer than the busy timeout: ingest waits and
    retries; everything published meanwhile is journaled once the lock goes."""
    db = tmp_path / "dw.db"
    config = config_on(tmp_path, broker, db)
    daemon_factory(config)
    wait_healthy(config)
    locker = sqlite3.connect(db, isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(50):
            publisher.publish("site/gym", event(f"lock{i}"))
        wait_until(
            lambda: http_get(console_url(config) + "/healthz")[0] == 503,
            timeout=20,
            what="health red while locked",
        )
    finally:
        with contextlib.suppress(sqlite3.Error):
            locker.execute("ROLLBACK")
        locker.close()
    wait_until(lambda: len(journal_rows(db)) == 50, timeout=60, what="50 journaled after the lock")
