"""``device_offline``: a controller or sensor reports offline; resolves when it is back.

Offline comes from the MQTT adapters (LWT, availability topics, and their own heartbeat-silence
detection); this rule does not time heartbeats again. Camera outages belong to
``camera_offline``. ``devices`` limits it to some devices or controller ids; ``doors``/``zones``
to devices whose controller maps one of those doors.
"""

from __future__ import annotations

from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import DeviceOfflineOptions, Severity
from doorwatch.rules.registry import register

# A dead controller means its doors go unwatched: alarms from them stop arriving.
DEFAULT_SEVERITY = Severity.HIGH


@register(
    "device_offline",
    options=DeviceOfflineOptions,
    severity=DEFAULT_SEVERITY,
    title="Device offline: {device}",
)
def setup(rule: RuleContext[DeviceOfflineOptions]) -> None:
    """Subscribe the offline and online handlers."""
    wanted = frozenset(rule.options.devices) if rule.options.devices is not None else None

    def concerns(event: Event) -> bool:
        if event.camera is not None:
            return False
        return wanted is None or bool({event.source, event.device} & wanted)

    def subject(event: Event) -> str:
        return f"device:{event.source}:{event.device or event.source}"

    @rule.on(EventKind.DEVICE_OFFLINE, where=concerns)
    def offline(event: Event) -> None:
        rule.raise_alert(event=event, subject=subject(event), details={"reason": event.reason})

    @rule.on(EventKind.DEVICE_ONLINE, where=concerns, include_replayed=True)
    def online(event: Event) -> None:
        rule.resolve_alert(event=event, subject=subject(event), reason="device back online")
