"""``camera_tamper``: a camera reports tampering, scene change or signal loss; resolves on clear."""

from __future__ import annotations

from doorwatch.rules.api import Event, EventKind, RuleContext
from doorwatch.rules.config import CameraTamperOptions, Severity
from doorwatch.rules.registry import register

# A blinded camera is often the first step of a break-in.
DEFAULT_SEVERITY = Severity.HIGH


@register(
    "camera_tamper",
    options=CameraTamperOptions,
    severity=DEFAULT_SEVERITY,
    title="Camera tampered with: {camera}",
)
def setup(rule: RuleContext[CameraTamperOptions]) -> None:
    """Subscribe the tamper handlers."""
    wanted = frozenset(rule.options.cameras) if rule.options.cameras is not None else None

    def camera_of(event: Event) -> str:
        return event.camera or event.device or event.source

    def concerns(event: Event) -> bool:
        return wanted is None or camera_of(event) in wanted

    @rule.on(EventKind.CAMERA_TAMPER, where=concerns)
    def tampered(event: Event) -> None:
        rule.raise_alert(event=event, camera=camera_of(event), details={"reason": event.reason})

    @rule.on(EventKind.CAMERA_TAMPER_CLEARED, where=concerns, include_replayed=True)
    def cleared(event: Event) -> None:
        rule.resolve_alert(event=event, camera=camera_of(event), reason="tamper cleared")
