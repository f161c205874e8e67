"""Background load for the benchmark, in its own process: a site's everyday MQTT traffic.

    python bench/loadgen.py --port P --rate 1000 --seconds 30   # paced
    python bench/loadgen.py --port P --rate 0 --seconds 30      # as fast as the broker acks

Three messages in four are uhppoted card swipes (granted) at the load controllers' doors, one
in four a zigbee2mqtt contact report that repeats "closed" (a heartbeat for doorwatch). None
of it raises an alert. Messages are shaped by the project's controller simulator; only the
ids, cards and doors vary. Prints one JSON object (sent, elapsed) when done or on SIGTERM.
"""

from __future__ import annotations

import argparse
import copy
import signal
import sys
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import LOAD_DEVICE_BASE, Traffic, paho_client


class Renderer:
    """Fast variations of one simulator-rendered message per kind."""

    def __init__(self, devices: int) -> None:
        traffic = Traffic()
        swipe = traffic.uhppoted_msg("swipe", LOAD_DEVICE_BASE, 1, 8165537)
        contact = traffic.contact_msg("bench-sensor-0", closed=True)
        self.swipe_topic, self.swipe = swipe.topic, orjson.loads(swipe.payload)
        self.contact_payload = contact.payload
        self.devices = devices
        # Event ids rise per controller from a start no earlier run can have passed.
        self.next_id = [int(time.time() * 10) % 1_000_000_000 for _ in range(devices)]
        self.i = 0

    def next(self) -> tuple[str, bytes]:
        i = self.i
        self.i += 1
        if i % 4 == 3:
            return f"zigbee2mqtt/bench-sensor-{i % 16}", self.contact_payload
        dev = (i // 4) % self.devices
        body = copy.deepcopy(self.swipe)
        event = body["message"]["event"]["event"]
        event["device-id"] = LOAD_DEVICE_BASE + dev
        event["door-id"] = 1 + i % 4
        event["card-number"] = 8165537 + i % 500
        event["event-id"] = self.next_id[dev]
        self.next_id[dev] += 1
        return self.swipe_topic, orjson.dumps(body)


def main() -> int:
    parser = argparse.ArgumentParser(description="benchmark background load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s; 0 = flat out")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--devices", type=int, default=10)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = paho_client()
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    render = Renderer(args.devices)
    sent = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    if args.rate > 0:
        # Batches every 10 ms: smooth enough for a 1,000/s load, cheap to schedule.
        tick = 0.01
        per_tick = args.rate * tick
        due = 0.0
        next_tick = started
        while not stop.is_set() and time.perf_counter() < deadline:
            due += per_tick
            while due >= 1:
                topic, payload = render.next()
                client.publish(topic, payload, qos=1)
                sent += 1
                due -= 1
            next_tick += tick
            pause = next_tick - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    else:
        while not stop.is_set() and time.perf_counter() < deadline:
            infos = []
            for _ in range(500):
                topic, payload = render.next()
                infos.append(client.publish(topic, payload, qos=1))
            for info in infos:
                info.wait_for_publish(30)
            sent += len(infos)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    print(orjson.dumps({"sent": sent, "elapsed": round(elapsed, 3)}).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
