"""Where an alert's time goes inside doorwatch: a stage-by-stage profile of the alert path.

``python bench/alert_path.py [--alerts 300] [--rate 100] [--load 0]`` runs the daemon in this
process against a private mosquitto, publishes forced-door events at ``rate``/s (each a new
alert at its own door), optionally under a background of ``load`` access events/s at another
door, and timestamps every stage with ``perf_counter``:

    published -> submitted (MQTT in, decoded) -> journaled (committed, state updated) ->
    announced (through the rules, alert and deliveries committed) -> delivery attempted ->
    webhook received

The end-to-end figure of ``bench/run.py`` adds the bench's own publisher and receiver
threads and the process boundary; this one shows what doorwatch itself costs. It prints a
table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Broker, free_port, paho_client, pct

from doorwatch import app, logs
from doorwatch.config import load_config
from doorwatch.events import Event
from doorwatch.notify.base import Delivery

# "announced": the event is journaled, the rules ran and the alert with its deliveries is
# committed (the store tells its listeners after the commit).
STAGES = ("published", "submitted", "journaled", "announced", "attempted", "received")


class Stamps:
    """perf_counter() per door and stage."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}

    def mark(self, stage: str, door: str | None) -> None:
        if door is not None:
            self.at.setdefault(door, {}).setdefault(stage, time.perf_counter())

    def table(self) -> dict[str, dict[str, float]]:
        complete = [s for s in self.at.values() if all(stage in s for stage in STAGES)]
        out: dict[str, dict[str, float]] = {}
        pairs = [*itertools.pairwise(STAGES), (STAGES[0], STAGES[-1])]
        for first, last in pairs:
            spans = [s[last] - s[first] for s in complete]
            out[f"{first}->{last}"] = {
                "p50_ms": round(pct(spans, 50) * 1000, 2),
                "p95_ms": round(pct(spans, 95) * 1000, 2),
                "p99_ms": round(pct(spans, 99) * 1000, 2),
            }
        out["n"] = {"alerts": len(complete)}
        return out


def config_text(workdir: Path, broker_port: int, hook_port: int, doors: int) -> str:
    door_lines = "\n".join(f"  - {{id: d{i}, name: Door {i}}}" for i in range(doors))
    door_lines += "\n  - {id: background, name: Background}"
    return f"""
site: {{name: Bench High, timezone: UTC}}
mqtt: {{url: "mqtt://127.0.0.1:{broker_port}", client_id: alert-path}}
storage: {{path: {workdir / "doorwatch.db"}}}
doors:
{door_lines}
controllers: [{{id: gen, codec: generic, topics: ["bench/+"]}}]
rules: [{{type: door_forced_open}}]
notify: {{webhooks: [{{url: "http://127.0.0.1:{hook_port}/hook"}}], mqtt: {{enabled: false}}}}
console: {{listen: "127.0.0.1:{free_port()}"}}
logging: {{level: warning}}
"""


def instrument(daemon: app.Daemon, stamps: Stamps) -> None:
    """Wrap the stage boundaries with timestamps (behaviour unchanged)."""
    submit = daemon.pipeline.submit

    async def timed_submit(events: Sequence[Event], *args: Any, **kwargs: Any) -> None:
        for event in events:
            stamps.mark("submitted", event.door)
        await submit(events, *args, **kwargs)

    daemon.pipeline.submit = timed_submit  # type: ignore[method-assign]

    async def journaled(batch: Sequence[Any]) -> None:
        for item in batch:
            stamps.mark("journaled", item.event.door)

    daemon.pipeline.consumers.insert(0, journaled)
    assert daemon.alerts is not None
    daemon.alerts.store.listeners.insert(
        0, lambda change: stamps.mark("announced", change.alert["door"])
    )
    outbox = daemon.alerts.outbox
    attempt: Callable[[Delivery], Awaitable[None]] = outbox._attempt  # noqa: SLF001

    async def timed_attempt(delivery: Delivery) -> None:
        stamps.mark("attempted", delivery.payload["alert"]["door"])
        await attempt(delivery)

    outbox._attempt = timed_attempt  # type: ignore[method-assign] # noqa: SLF001


def background(port: int, rate: float, stop: threading.Event) -> None:
    """Publish access events at a door no rule alerts on, ``rate`` per second, in 10 ms ticks."""
    client = paho_client()
    client.connect("127.0.0.1", port)
    client.loop_start()
    body = json.dumps({"kind": "access.granted", "door": "background", "holder": "bench"})
    sent, started = 0, time.perf_counter()
    try:
        while not stop.is_set():
            due = int((time.perf_counter() - started) * rate)
            for _ in range(due - sent):
                client.publish("bench/load", body, qos=1)
            sent = max(sent, due)
            time.sleep(0.01)
    finally:
        client.loop_stop()
        client.disconnect()


async def measure(alerts: int, rate: float, load: float) -> dict[str, dict[str, float]]:
    stamps = Stamps()
    with tempfile.TemporaryDirectory(prefix="doorwatch-alert-path-") as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        broker.start()

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            stamps.mark("received", body["alert"]["door"])
            return web.Response()

        receiver = web.Application()
        receiver.router.add_post("/hook", hook)
        runner = web.AppRunner(receiver, access_log=None)
        await runner.setup()
        hook_port = free_port()
        await web.TCPSite(runner, "127.0.0.1", hook_port).start()
        path = workdir / "doorwatch.yaml"
        path.write_text(config_text(workdir, broker.port, hook_port, alerts))
        stop_load = threading.Event()
        loader = threading.Thread(target=background, args=(broker.port, load, stop_load))
        daemon = await app.build(load_config(path))
        instrument(daemon, stamps)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(daemon.run(stop, ready=ready.set))
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(1.0)  # Subscribed and idle.
        if load > 0:
            loader.start()
            await asyncio.sleep(2.0)  # The background has reached its rate.
        publisher = paho_client()
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        try:
            for i in range(alerts):
                stamps.mark("published", f"d{i}")
                body = json.dumps({"kind": "door.forced", "door": f"d{i}"})
                publisher.publish("bench/x", body, qos=1)
                await asyncio.sleep(1 / rate)
            await asyncio.sleep(2.0)
        finally:
            stop_load.set()
            if loader.is_alive():
                loader.join(5)
            publisher.loop_stop()
            publisher.disconnect()
            stop.set()
            await asyncio.wait_for(task, 15)
            await runner.cleanup()
            broker.stop()
    return stamps.table()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300, help="alerts to raise")
    parser.add_argument("--rate", type=float, default=100.0, help="alerts per second")
    parser.add_argument("--load", type=float, default=0.0, help="background access events/s")
    args = parser.parse_args()
    logs.configure("warning")
    table = asyncio.run(measure(args.alerts, args.rate, args.load))
    for span, figures in table.items():
        print(f"{span:<24} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    print(json.dumps(table))


if __name__ == "__main__":
    main()
