"""Prometheus metrics of the ONVIF cameras, on the daemon's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class CameraMetrics:
    """Per-camera connection, clock, pull and snapshot metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Register the metrics on ``registry`` (the daemon's, or a test's own)."""
        self.online = Gauge(
            "doorwatch_camera_online",
            "1 while the camera's events are flowing, 0 once it is reported offline",
            ["camera"],
            registry=registry,
        )
        self.clock_skew = Gauge(
            "doorwatch_camera_clock_skew_seconds",
            "Camera clock minus doorwatch clock, measured on each pull",
            ["camera"],
            registry=registry,
        )
        self.pulls = Counter(
            "doorwatch_camera_pulls_total",
            "PullMessages calls, by outcome (ok, auth, subscription, network)",
            ["camera", "outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "doorwatch_camera_messages_total",
            "Notification messages received",
            ["camera"],
            registry=registry,
        )
        self.unknown_topics = Counter(
            "doorwatch_camera_unknown_topics_total",
            "Notification messages whose topic the normaliser does not know",
            ["camera"],
            registry=registry,
        )
        self.subscriptions = Counter(
            "doorwatch_camera_subscriptions_total",
            "Pull-point subscriptions created (restarts after faults included)",
            ["camera"],
            registry=registry,
        )
        self.snapshots = Counter(
            "doorwatch_camera_snapshots_total",
            "Snapshot fetches, by outcome (ok, failed, too_large, unavailable)",
            ["camera", "outcome"],
            registry=registry,
        )
