"""Prometheus metrics, on a registry of the daemon's own (tests run several daemons)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Every metric doorwatch exports; one instance per running daemon."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_in = Counter(
            "doorwatch_events_total",
            "Events journaled, by source and kind",
            ["source", "kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "doorwatch_duplicate_events_total",
            "Redelivered events recognised by dedupe key and dropped",
            ["source"],
            registry=r,
        )
        self.decode_failures = Counter(
            "doorwatch_decode_failures_total",
            "Messages that could not be decoded and were dead-lettered, by source and reason",
            ["source", "reason"],
            registry=r,
        )
        self.unmapped_doors = Counter(
            "doorwatch_unmapped_door_events_total",
            "Events whose source door reference is not mapped to a site door",
            ["source"],
            registry=r,
        )
        self.mqtt_messages = Counter(
            "doorwatch_mqtt_messages_total", "MQTT messages received", registry=r
        )
        self.mqtt_connected = Gauge(
            "doorwatch_mqtt_connected", "1 while connected to the MQTT broker", registry=r
        )
        self.mqtt_connects = Counter(
            "doorwatch_mqtt_connects_total", "Successful MQTT connections", registry=r
        )
        self.queue_depth = Gauge(
            "doorwatch_ingest_queue_depth", "Messages received and not yet journaled", registry=r
        )
        self.journal_commit = Histogram(
            "doorwatch_journal_commit_seconds",
            "Time to durably commit one ingest batch",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.journal_batch = Histogram(
            "doorwatch_journal_batch_messages",
            "Messages per journal commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.storage_errors = Counter(
            "doorwatch_storage_errors_total", "Failed database writes (retried)", registry=r
        )
        self.alerts = Counter(
            "doorwatch_alerts_total",
            "Alert transitions, by rule, severity and action",
            ["rule", "severity", "action"],
            registry=r,
        )
        self.alerts_open = Gauge(
            "doorwatch_alerts_open", "Alerts not yet resolved, by state", ["state"], registry=r
        )
        self.deliveries = Counter(
            "doorwatch_deliveries_total",
            "Notification deliveries, by notifier and outcome",
            ["notifier", "outcome"],
            registry=r,
        )
        self.deliveries_dead = Gauge(
            "doorwatch_deliveries_dead", "Deliveries given up on", registry=r
        )
        self.devices_offline = Gauge(
            "doorwatch_devices_offline", "Devices currently reported offline", registry=r
        )

    def render(self) -> bytes:
        """The text exposition format served on /metrics."""
        return generate_latest(self.registry)
