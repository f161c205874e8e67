"""``camera_offline``: a camera stops answering (``device.offline``); resolves when back."""

from __future__ import annotations

from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import CameraOfflineOptions, Severity
from doorwatch.rules.registry import register

# The doors are still watched through their controllers; the pictures are what is lost.
DEFAULT_SEVERITY = Severity.MEDIUM


@register(
    "camera_offline",
    options=CameraOfflineOptions,
    severity=DEFAULT_SEVERITY,
    title="Camera offline: {camera}",
)
def setup(rule: RuleContext[CameraOfflineOptions]) -> None:
    """Subscribe the offline and online handlers."""
    wanted = frozenset(rule.options.cameras) if rule.options.cameras is not None else None

    def concerns(event: Event) -> bool:
        return event.camera is not None and (wanted is None or event.camera in wanted)

    @rule.on(EventKind.DEVICE_OFFLINE, where=concerns)
    def offline(event: Event) -> None:
        rule.raise_alert(event=event, details={"reason": event.reason})

    @rule.on(EventKind.DEVICE_ONLINE, where=concerns, include_replayed=True)
    def online(event: Event) -> None:
        rule.resolve_alert(event=event, reason="camera back online")
