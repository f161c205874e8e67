"""doorwatch benchmark: measures doorwatch against its limits and a peer, side by side, in one run.

Every figure that matters is a ratio measured in the same run on the same broker (this
machine is shared and noisy); absolute numbers are printed for context. See bench/README.md.

    python bench/run.py --quick     # under a minute; last line is one JSON object
    python bench/run.py             # the full run (adds 30 s sustained load, cameras, Node-RED)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Broker,
    Daemon,
    Message,
    Publisher,
    Sampler,
    SiteSpec,
    Traffic,
    WebhookReceiver,
    free_port_block,
    machine_cpu_busy,
    median,
    paho_client,
    pct,
    proc_cpu_seconds,
    register_session,
    summary_ms,
)

BENCH = Path(__file__).resolve().parent


def log(*parts: object) -> None:
    """Progress on stderr; stdout's last line is the JSON result."""
    print("bench:", *parts, file=sys.stderr, flush=True)


# ----- 1. ceilings: bare paho and mosquitto_sub on the same payloads -----


def _prefixed(messages: Sequence[Message], prefix: str) -> list[Message]:
    return [Message(f"{prefix}/{m.topic}", m.payload) for m in messages]


def paho_drain(port: int, messages: Sequence[Message]) -> float:
    """A bare paho subscriber (callback API, does nothing) draining a QoS 1 backlog: msg/s."""
    client_id = f"bench-paho-{uuid.uuid4().hex[:6]}"
    register_session(port, client_id, ["paho/#"])
    pub = Publisher(port)
    pub.publish_all(_prefixed(messages, "paho"))
    pub.close()
    count = len(messages)
    received = 0
    first: list[float] = []
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received >= count:
            done.set()

    client = paho_client(client_id)
    client.on_message = on_message
    props = paho_props()
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - first[0]
    client.loop_stop()
    client.disconnect()
    return count / elapsed


def paho_props() -> Any:
    import paho.mqtt.client as paho

    props = paho.Properties(paho.PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    return props


def mosquitto_sub_drain(port: int, messages: Sequence[Message]) -> float | None:
    """mosquitto's own C client draining the same backlog: the machine's limit."""
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        return None
    client_id = f"bench-msub-{uuid.uuid4().hex[:6]}"
    register_session(port, client_id, ["msub/#"])
    pub = Publisher(port)
    pub.publish_all(_prefixed(messages, "msub"))
    pub.close()
    started = time.perf_counter()
    subprocess.run(
        [
            sub,
            "-p",
            str(port),
            "-V",
            "mqttv5",
            "-c",
            "-i",
            client_id,
            "-x",
            "3600",
            "-q",
            "1",
            "-t",
            "msub/#",
            "-C",
            str(len(messages)),
        ],
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=300,
    )
    # Includes process start and CONNECT (a few ms) over a drain of many thousands.
    return len(messages) / (time.perf_counter() - started)


# ----- 2. doorwatch ingest -----


def wait_journaled(daemon: Daemon, target: int, *, stall: float = 10.0) -> float:
    """Poll until the journal reaches ``target``; events/s from the first batch seen on."""
    start_seq = daemon.journaled()
    first: tuple[float, int] | None = None
    last_n, last_change = start_seq, time.perf_counter()
    while True:
        n = daemon.journaled()
        now = time.perf_counter()
        if n > start_seq and first is None:
            # The first batch landed before we saw it: count only what came after.
            first = (now, n)
        if n >= target and first is not None and n > first[1]:
            return (n - first[1]) / (now - first[0])
        if n != last_n:
            last_n, last_change = n, now
        elif now - last_change > stall:
            raise RuntimeError(f"journal stalled at {n} of {target}")
        time.sleep(0.005)


def doorwatch_drain(work: Path, port: int, messages: Sequence[Message]) -> dict[str, float]:
    """The daemon draining a QoS 1 backlog: decoded, journaled (WAL, FULL), acked, ruled."""
    daemon = Daemon(work, port, SiteSpec())
    daemon.start()  # Registers the persistent session...
    daemon.wait_connected()
    daemon.stop()  # ...then goes away while the backlog builds.
    pub = Publisher(port)
    pub.publish_all(messages)
    pub.close()
    already = daemon.journaled()
    daemon.start()
    try:
        eps = wait_journaled(daemon, already + len(messages))
        return {"eps": eps, "rss_mb": daemon.rss_mb()}
    finally:
        daemon.stop()


def sustained(work: Path, port: int, seconds: float) -> dict[str, Any]:
    """Flat-out live traffic for ``seconds``: what the daemon keeps up with, queue, RSS."""
    daemon = Daemon(work, port, SiteSpec())
    daemon.start()
    daemon.wait_connected()
    sampler = Sampler(daemon)
    sampler.start()
    before = daemon.journaled()
    load = start_load(port, rate=0, seconds=seconds)
    time.sleep(0.5)
    j0, t0, c0 = daemon.journaled(), time.perf_counter(), daemon.cpu_seconds()
    sent = finish_load(load, timeout=seconds + 30)
    j1, t1, c1 = daemon.journaled(), time.perf_counter(), daemon.cpu_seconds()
    samples = sampler.stop()
    # What was still queued in the broker when the publisher stopped.
    backlog = max(0, sent["sent"] - (j1 - before))
    daemon.stop()
    depth = [s["queue_depth"] for s in samples if "queue_depth" in s]
    rss = [s["rss_mb"] for s in samples if "rss_mb" in s]
    return {
        "seconds": round(t1 - t0, 1),
        "offered_eps": round(sent["sent"] / max(sent["elapsed"], 1e-9)),
        "eps": round((j1 - j0) / (t1 - t0)),
        "daemon_cpu_share": round((c1 - c0) / (t1 - t0), 2),
        "queue_depth_max": max(depth) if depth else None,
        "queue_depth_p50": pct(depth, 50) if depth else None,
        "rss_mb_start": rss[0] if rss else None,
        "rss_mb_max": max(rss) if rss else None,
        "rss_mb_end": rss[-1] if rss else None,
        "broker_backlog_at_end": backlog,
        "samples": samples,
    }


def start_load(port: int, *, rate: float, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "loadgen.py"),
            "--port",
            str(port),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
    )


def finish_load(process: subprocess.Popen[bytes], timeout: float) -> dict[str, float]:
    out, _ = process.communicate(timeout=timeout)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


# ----- 3 & 4. alert latency and timer accuracy -----


class Probes:
    """Forced-door probes and held-open timer doors, published from this process."""

    def __init__(self, port: int, spec: SiteSpec) -> None:
        self.spec = spec
        self.traffic = Traffic()
        self.publisher = Publisher(port)
        self.sent: dict[str, float] = {}  # door id -> perf_counter at publish
        self.opened: dict[str, float] = {}

    def prime_timer_doors(self) -> None:
        """Zigbee2MQTT's first report after a start is state, not news: send it first."""
        for i in range(self.spec.timer_doors):
            self.publisher.publish(self.traffic.contact_msg(f"bench-timer-{i}", closed=True))

    def run(self, probes: range, timer_doors: range, rate: float) -> None:
        """Forced-door probes at ``rate``/s, timer doors opened in between, evenly."""
        interval = 1.0 / rate
        opens = list(timer_doors)
        every = max(1, len(probes) // max(1, len(opens))) if opens else 0
        start = time.perf_counter()
        for n, i in enumerate(probes):
            device, door = self.spec.probe_ref(i)
            message = self.traffic.uhppoted_msg("forced", device, door)
            self.sent[f"probe-{i}"] = time.perf_counter()
            self.publisher.publish(message)
            if opens and n % every == every // 2:
                t = opens.pop(0)
                message = self.traffic.contact_msg(f"bench-timer-{t}", closed=False)
                self.opened[f"timer-{t}"] = time.perf_counter()
                self.publisher.publish(message)
            pause = start + (n + 1) * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)

    def close(self) -> None:
        self.publisher.close()


def collect(
    receiver: WebhookReceiver,
    action: str,
    rule: str,
    sent: dict[str, float],
    *,
    offset: float = 0.0,
    timeout: float = 30.0,
) -> list[float]:
    """Latencies (s) of the first ``action`` of ``rule`` per door, waiting for all to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        got = receiver.first(action, rule)
        if all(door in got for door in sent) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    missing = [door for door in sent if door not in got]
    if missing:
        log(f"{len(missing)} of {len(sent)} {rule} alerts never arrived (first: {missing[0]})")
    return [got[d].at - t - offset for d, t in sent.items() if d in got]


def alert_latency(
    work: Path, port: int, *, probes: int, timer_doors: int, rate: float
) -> dict[str, Any]:
    """Forced door -> webhook, idle and under 1,000 events/s; held-open lateness under load."""
    receiver = WebhookReceiver()
    receiver.start()
    spec = SiteSpec(
        probe_doors=2 * probes,
        timer_doors=timer_doors,
        webhook_url=receiver.url,
        held_open_after=1.0,
    )
    daemon = Daemon(work, port, spec)
    results: dict[str, Any] = {}
    try:
        daemon.start()
        daemon.wait_connected()
        p = Probes(port, spec)
        p.prime_timer_doors()
        time.sleep(1.0)
        # Idle: nothing but the probes (each a new alert at its own door).
        p.run(range(probes), range(0), rate=rate)
        idle = collect(receiver, "raised", "door_forced_open", p.sent)
        results["idle"] = summary_ms(idle)
        # Under load: 1,000 events/s of swipes and contact reports in another process.
        p.sent.clear()
        load_seconds = probes / rate + 8
        load = start_load(port, rate=1000, seconds=load_seconds)
        time.sleep(2.0)
        j0, t0 = daemon.journaled(), time.perf_counter()
        cpu0 = daemon.cpu_seconds()
        p.run(range(probes, 2 * probes), range(timer_doors), rate=rate)
        loaded = collect(receiver, "raised", "door_forced_open", p.sent)
        late = collect(receiver, "raised", "door_held_open", p.opened, offset=spec.held_open_after)
        j1, t1 = daemon.journaled(), time.perf_counter()
        cpu1 = daemon.cpu_seconds()
        sent = finish_load(load, timeout=load_seconds + 30)
        p.close()
        results["load"] = summary_ms(loaded)
        results["load"]["journaled_eps"] = round((j1 - j0) / (t1 - t0))
        results["load"]["offered_eps"] = round(sent["sent"] / sent["elapsed"])
        results["load"]["daemon_cpu_share"] = round((cpu1 - cpu0) / (t1 - t0), 2)
        results["timer"] = summary_ms(late)
        results["timer"]["min"] = round(min(late) * 1000, 1) if late else None
        results["bad_signatures"] = receiver.bad_signatures
    finally:
        daemon.stop()
        receiver.stop()
    return results


# ----- 5. cameras -----

MOTION_SCRIPT = """\
repeat: true
steps:
  - {at: 0s, topic: "tns1:RuleEngine/CellMotionDetector/Motion",
     source: {VideoSourceConfigurationToken: VideoSource_1}, data: {IsMotion: true}}
  - {at: 5s, topic: "tns1:RuleEngine/CellMotionDetector/Motion",
     source: {VideoSourceConfigurationToken: VideoSource_1}, data: {IsMotion: false}}
  - {at: 10s, topic: "tns1:RuleEngine/CellMotionDetector/Motion",
     source: {VideoSourceConfigurationToken: VideoSource_1}, data: {IsMotion: true}}
  - {at: 15s, topic: "tns1:RuleEngine/CellMotionDetector/Motion",
     source: {VideoSourceConfigurationToken: VideoSource_1}, data: {IsMotion: false}}
"""


def cameras(
    work: Path, port: int, counts: Sequence[int], *, settle: float, window: float
) -> dict[str, Any]:
    """N fake ONVIF cameras (motion on/off every 5 s each) and one daemon: CPU, RSS."""
    out: dict[str, Any] = {}
    baseline = idle_daemon(work / "cam-0", port, settle=settle, window=window)
    out["0"] = baseline
    for n in counts:
        cam_dir = work / f"cam-{n}"
        cam_dir.mkdir()
        script = cam_dir / "motion.yaml"
        script.write_text(MOTION_SCRIPT)
        first = free_port_block(n)
        fake = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "doorwatch",
                "simulate",
                "camera",
                "--count",
                str(n),
                "--port",
                str(first),
                "--events",
                str(script),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(cam_dir / "cameras.log").open("ab"),
        )
        try:
            from harness import wait_port

            wait_port(first + n - 1, timeout=30)
            ids = [(f"cam-{i}", first + i) for i in range(n)]
            figures = idle_daemon(cam_dir, port, settle=settle, window=window, cameras=ids)
            figures["fake_cameras_cpu_share"] = round(
                proc_cpu_seconds(fake.pid) / max(1e-9, figures.pop("_lifetime")), 2
            )
            figures["rss_mb_per_camera"] = round((figures["rss_mb"] - baseline["rss_mb"]) / n, 3)
            out[str(n)] = figures
            log(f"cameras {n}: {figures}")
        finally:
            fake.terminate()
            fake.wait(10)
    out["0"].pop("_lifetime", None)
    return out


def idle_daemon(
    work: Path,
    port: int,
    *,
    settle: float,
    window: float,
    cameras: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    """A daemon with ``cameras``: time until all are online, then CPU and RSS over a window."""
    work.mkdir(exist_ok=True)
    daemon = Daemon(work, port, SiteSpec(cameras=cameras))
    born = time.perf_counter()
    ready = daemon.start()
    try:
        up: float | None = None
        deadline = time.perf_counter() + 120
        while cameras and time.perf_counter() < deadline:
            with contextlib.suppress(OSError):
                if daemon.metric_sum("doorwatch_camera_online") >= len(cameras):
                    up = time.perf_counter() - born
                    break
            time.sleep(0.25)
        time.sleep(settle)
        m0 = daemon.metric_sum("doorwatch_camera_messages_total") if cameras else 0.0
        c0, t0 = daemon.cpu_seconds(), time.perf_counter()
        time.sleep(window)
        c1, t1 = daemon.cpu_seconds(), time.perf_counter()
        m1 = daemon.metric_sum("doorwatch_camera_messages_total") if cameras else 0.0
        online = daemon.metric_sum("doorwatch_camera_online") if cameras else 0.0
        return {
            "ready_s": round(ready, 3),
            "all_online_s": round(up, 1) if up is not None else None,
            "cameras_online": online,
            "camera_messages_per_s": round((m1 - m0) / (t1 - t0), 1),
            "cpu_share": round((c1 - c0) / (t1 - t0), 3),
            "rss_mb": round(daemon.rss_mb(), 1),
            "_lifetime": time.perf_counter() - born,
        }
    finally:
        daemon.stop()


# ----- 6. start-up -----


def measure_ready(work: Path, port: int, runs: int = 3) -> dict[str, float]:
    """Process start to READY=1 on $NOTIFY_SOCKET: once on a new database, then warm."""
    spec = SiteSpec(probe_doors=0, timer_doors=0)
    daemon = Daemon(work, port, spec)
    # Each start is let connect before SIGTERM: a stop that races the broker CONNECT (run in
    # an executor thread) can take up to the connect timeout, which is not what we measure.
    cold = daemon.start()
    daemon.wait_connected()
    daemon.stop()
    warm = []
    for _ in range(runs):
        warm.append(daemon.start())
        daemon.wait_connected()
        daemon.stop()
    return {"cold_s": round(cold, 3), "warm_s": round(median(warm), 3)}


# ----- 7. peer: Node-RED -----


def peer(work: Path, port: int, messages: Sequence[Message], *, probes: int) -> dict[str, Any]:
    from nodered import NodeRed

    node_red = NodeRed.prepare(work)
    if isinstance(node_red, str):
        log(node_red)
        return {"skipped": node_red}
    return node_red.measure(port, messages, probes=probes)


# ----- main -----


def timed(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    log(f"{name} ...")
    value = fn()
    results.setdefault("phase_s", {})[name] = round(time.perf_counter() - started, 1)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under 60 s")
    parser.add_argument(
        "--only", default="", help="comma-separated phases (ceiling, ingest, sustained, ...)"
    )
    parser.add_argument("--probes", type=int, default=500, help="alerts per latency phase")
    parser.add_argument(
        "--probe-rate", type=float, default=0, help="alerts/s (default 50; 100 with --quick)"
    )
    parser.add_argument("--cameras", default="50,100,200", help="camera counts to measure")
    parser.add_argument("--save", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    quick = args.quick
    only = {p for p in args.only.split(",") if p}

    def wanted(phase: str, *, full_only: bool = False) -> bool:
        if only:
            return phase in only
        return not (full_only and quick)

    count = 10_000 if quick else 40_000
    busy0, total0 = machine_cpu_busy()
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "messages": count,
    }
    traffic = Traffic()
    backlog = traffic.mixed(count)
    with tempfile.TemporaryDirectory(prefix="doorwatch-bench-") as tmp:
        work = Path(tmp)
        broker = Broker(work)
        broker.start()
        try:
            if wanted("ceiling"):
                results["paho_eps"] = round(
                    timed(results, "paho", lambda: paho_drain(broker.port, backlog))
                )
                msub = timed(
                    results, "mosquitto_sub", lambda: mosquitto_sub_drain(broker.port, backlog)
                )
                results["mosquitto_sub_eps"] = round(msub) if msub else None
            if wanted("ingest"):
                (work / "ingest").mkdir()
                drain = timed(
                    results,
                    "ingest",
                    lambda: doorwatch_drain(work / "ingest", broker.port, backlog),
                )
                results["ingest_eps"] = round(drain["eps"])
                results["ingest_rss_mb"] = round(drain["rss_mb"], 1)
                if "paho_eps" in results:
                    results["ingest_ratio_vs_paho"] = round(drain["eps"] / results["paho_eps"], 3)
                    if results.get("mosquitto_sub_eps"):
                        results["paho_ratio_vs_mosquitto_sub"] = round(
                            results["paho_eps"] / results["mosquitto_sub_eps"], 3
                        )
            if wanted("sustained"):
                (work / "sustained").mkdir()
                seconds = 5.0 if quick else 30.0
                results["sustained"] = timed(
                    results,
                    "sustained",
                    lambda: sustained(work / "sustained", broker.port, seconds),
                )
                if quick:
                    results["sustained"].pop("samples")
            if wanted("latency"):
                (work / "latency").mkdir()
                lat = timed(
                    results,
                    "latency",
                    lambda: alert_latency(
                        work / "latency",
                        broker.port,
                        probes=args.probes,
                        timer_doors=100 if quick else 200,
                        rate=args.probe_rate or (100.0 if quick else 50.0),
                    ),
                )
                results["alert_p50_ms_idle"] = lat["idle"]["p50"]
                results["alert_p99_ms_idle"] = lat["idle"]["p99"]
                results["alert_p50_ms_load"] = lat["load"]["p50"]
                results["alert_p99_ms_load"] = lat["load"]["p99"]
                results["timer_late_p99_ms"] = lat["timer"]["p99"]
                results["latency"] = lat
                results["latency"]["probe_rate"] = args.probe_rate or (100.0 if quick else 50.0)
            if wanted("ready"):
                (work / "ready").mkdir()
                ready = timed(results, "ready", lambda: measure_ready(work / "ready", broker.port))
                results["ready_s"] = ready["warm_s"]
                results["ready_cold_s"] = ready["cold_s"]
            if wanted("cameras", full_only=True):
                results["cameras"] = timed(
                    results,
                    "cameras",
                    lambda: cameras(
                        work,
                        broker.port,
                        [int(n) for n in args.cameras.split(",")],
                        settle=5.0,
                        window=20.0,
                    ),
                )
                for n, figures in results["cameras"].items():
                    if n != "0":
                        results[f"cameras_{n}_cpu_share"] = figures["cpu_share"]
                        results[f"cameras_{n}_rss_mb"] = figures["rss_mb"]
            if wanted("peer", full_only=True):
                (work / "peer").mkdir()
                results["peer"] = timed(
                    results,
                    "peer",
                    lambda: peer(work / "peer", broker.port, backlog, probes=args.probes),
                )
                node = results["peer"]
                if "ingest_eps" in node:
                    results["nodered_ingest_eps"] = node["ingest_eps"]
                    results["nodered_alert_p99_ms_idle"] = node["idle"]["p99"]
                    results["nodered_alert_p99_ms_load"] = node["load"]["p99"]
        finally:
            broker.stop()
    busy1, total1 = machine_cpu_busy()
    results["machine_busy_share"] = round((busy1 - busy0) / max(1.0, total1 - total0), 2)
    line = json.dumps(results)
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
