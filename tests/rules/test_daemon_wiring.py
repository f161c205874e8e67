"""The engine inside the daemon: build() wires it as a pipeline consumer and a service, with
the real clock, the SQLite alert store as its sink and its timers in the daemon's database."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from doorwatch import app
from doorwatch.config import load_config
from doorwatch.errors import ConfigError
from doorwatch.events import Event, EventKind, utcnow
from doorwatch.rules.clock import RealClock


def write(tmp_path, rules: str) -> object:
    path = tmp_path / "doorwatch.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            site: {{name: Test High, timezone: America/Chicago}}
            storage: {{path: {tmp_path / "doorwatch.db"}}}
            doors: [{{id: main, name: Main entrance, held_open_after: 1h}}]
            rules: {rules}
            """
        )
    )
    return load_config(path)


async def close(daemon: app.Daemon) -> None:
    if daemon.alerts is not None and daemon.alerts.http is not None:
        await daemon.alerts.http.close()
    await daemon.db.close()


def event(kind: EventKind, key: str) -> Event:
    return Event(kind=kind, source="gen", door="main", received_at=utcnow(), dedupe_key=key)


async def test_build_wires_rules_into_the_pipeline(tmp_path):
    """An event submitted to the pipeline reaches the rules and an alert reaches the store;
    the rules cursor is stored in the daemon's database."""
    daemon = await app.build(write(tmp_path, "[{type: door_forced_open}, {type: door_held_open}]"))
    try:
        service = daemon.services["rules"].__self__
        assert isinstance(service.clock, RealClock)
        assert service.consume in daemon.pipeline.consumers
        await daemon.pipeline.submit([event(EventKind.DOOR_FORCED, "k1")])
        assert daemon.alerts is not None
        assert [a["rule"] for a in await daemon.alerts.store.query()] == ["door_forced_open"]
        assert service.cursor == 1
    finally:
        await close(daemon)


async def test_a_pending_timer_is_rearmed_by_the_next_daemon(tmp_path):
    """A held-open timer started in one daemon is re-armed, with the same due time, by the
    next daemon built on the same database."""
    config = write(tmp_path, "[{type: door_held_open}]")
    first = await app.build(config)
    try:
        await first.pipeline.submit([event(EventKind.DOOR_OPENED, "k1")])
        (timer,) = first.services["rules"].__self__.engine.timers
    finally:
        await close(first)
    second = await app.build(config)
    try:
        (again,) = second.services["rules"].__self__.engine.timers
        assert (again.name, again.due_at) == (timer.name, timer.due_at)
        assert timedelta(minutes=59) < again.due_at - utcnow() <= timedelta(hours=1)
    finally:
        await close(second)


async def test_a_broken_custom_rule_stops_the_daemon_from_starting(tmp_path):
    """A custom rule that cannot be set up is a config error at start-up, not at 3 a.m."""
    (tmp_path / "broken.py").write_text("def setup(rule):\n    raise RuntimeError('no')\n")
    with pytest.raises(ConfigError, match=r"rules\[0\].module: setup\(rule\)"):
        await app.build(write(tmp_path, "[{module: broken.py}]"))


async def outbox_rows(daemon: app.Daemon) -> int:
    return await daemon.db.call(
        lambda c: c.execute("SELECT COUNT(*) FROM rule_outbox").fetchone()[0]
    )


async def test_alerts_commit_with_the_rules_state_and_a_failing_store_is_retried(
    tmp_path, monkeypatch
):
    """An alert is written in the rules' own transaction (nothing left in the rules outbox).
    If the store fails on a command, the rules state still commits, the command waits in the
    outbox, and it reaches the store, in order, once the store works again."""
    from doorwatch.alerts.sink import StoreSink

    daemon = await app.build(write(tmp_path, "[{type: door_forced_open}]"))
    try:
        service = daemon.services["rules"].__self__
        assert daemon.alerts is not None
        store = daemon.alerts.store
        await daemon.pipeline.submit([event(EventKind.DOOR_FORCED, "k1")])
        assert [a["rule"] for a in await store.query()] == ["door_forced_open"]
        assert await outbox_rows(daemon) == 0

        real = StoreSink.apply_in
        broken = {"on": True}

        def flaky(self, conn, command):
            if broken["on"]:
                raise RuntimeError("store bug")
            return real(self, conn, command)

        monkeypatch.setattr(StoreSink, "apply_in", flaky)
        forced_main = Event(
            kind=EventKind.DOOR_FORCED,
            source="gen",
            door="main",
            received_at=utcnow(),
            dedupe_key="k2",
        )
        await daemon.pipeline.submit([forced_main])
        assert service.cursor == 2, "the rules state committed despite the store failing"
        assert await outbox_rows(daemon) == 1
        (only,) = await store.query()
        assert only["occurrences"] == 1
        broken["on"] = False
        await service.flush()
        assert await outbox_rows(daemon) == 0
        (again,) = await store.query()
        assert again["occurrences"] == 2
    finally:
        await close(daemon)
