"""Push through Apprise (ntfy, Pushover, Telegram, email, SMS gateways...)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise

from doorwatch.config.models import AppriseTarget
from doorwatch.notify.base import Delivery, DeliveryError, register_notifier
from doorwatch.notify.filters import audience_matches, severity_at_least

# Services with their own priority scale get it set from the alert's severity, so a critical
# alert breaks through a phone's do-not-disturb where the service allows it.
_PRIORITY = {
    "ntfy": {"critical": "max", "high": "high", "medium": "default", "low": "low", "info": "min"},
    "ntfys": {"critical": "max", "high": "high", "medium": "default", "low": "low", "info": "min"},
    "pover": {"critical": "1", "high": "1", "medium": "0", "low": "-1", "info": "-2"},
}
_TYPE = {
    "critical": apprise.NotifyType.FAILURE,
    "high": apprise.NotifyType.FAILURE,
    "medium": apprise.NotifyType.WARNING,
    "low": apprise.NotifyType.INFO,
    "info": apprise.NotifyType.INFO,
}
# Apprise calls are bounded so that one slow push service cannot hold the outbox.
_SEND_TIMEOUT = 30.0


def with_priority(url: str, severity: str) -> str:
    """Add the service's priority parameter for this severity, unless the URL sets one."""
    parts = urlsplit(url)
    scale = _PRIORITY.get(parts.scheme)
    if scale is None or severity not in scale:
        return url
    query = dict(parse_qsl(parts.query))
    query.setdefault("priority", scale[severity])
    return urlunsplit(parts._replace(query=urlencode(query)))


def message_text(payload: dict[str, Any]) -> tuple[str, str]:
    """(title, body) for a push notification."""
    alert = payload.get("alert", {})
    action = payload.get("action", "raised")
    title = str(alert.get("title") or alert.get("rule") or "doorwatch alert")
    prefix = {"raised": "", "resolved": "Resolved: ", "acknowledged": "Acknowledged: "}.get(
        action, f"{action.capitalize()}: "
    )
    lines = [
        f"Severity: {alert.get('severity', '?')}",
        f"Where: {alert.get('door_name') or alert.get('door') or alert.get('camera') or '-'}",
    ]
    if alert.get("zone"):
        lines.append(f"Zone: {alert['zone']}")
    if alert.get("occurrences", 1) > 1:
        lines.append(f"Occurrences: {alert['occurrences']}")
    if alert.get("acknowledged_by"):
        lines.append(f"Acknowledged by: {alert['acknowledged_by']}")
    lines.append(f"Site: {payload.get('site', '')}")
    return prefix + title, "\n".join(lines)


@register_notifier("apprise")
class AppriseNotifier:
    """Sends through one Apprise URL (which may carry a token, so it is never logged)."""

    kind: ClassVar[str]

    def __init__(self, config: AppriseTarget, *, index: int, url: str) -> None:
        self.config = config
        self.target = f"apprise:{index}"
        self._url = url

    def wants(self, alert: dict[str, Any]) -> bool:
        """Severity floor and audience of this target."""
        audiences = [self.config.audience] if self.config.audience else None
        return severity_at_least(alert, self.config.min_severity) and audience_matches(
            alert, audiences
        )

    async def send(self, delivery: Delivery) -> None:
        """Notify once; Apprise reports only success or failure."""
        alert = delivery.payload.get("alert", {})
        severity = str(alert.get("severity", "medium"))
        title, body = message_text(delivery.payload)
        notifier = apprise.Apprise()
        if not notifier.add(with_priority(self._url, severity)):
            raise DeliveryError("Apprise does not understand the configured URL")
        with tempfile.TemporaryDirectory(prefix="doorwatch-") as folder:
            attach = None
            if delivery.snapshot and self.config.attach_snapshot:
                path = Path(folder) / f"{delivery.alert_id}.jpg"
                path.write_bytes(delivery.snapshot)
                attach = apprise.AppriseAttachment(str(path))
            try:
                ok = await asyncio.wait_for(
                    notifier.async_notify(
                        body=body, title=title, notify_type=_TYPE.get(severity), attach=attach
                    ),
                    _SEND_TIMEOUT,
                )
            except TimeoutError:
                raise DeliveryError(f"no answer within {_SEND_TIMEOUT:.0f}s") from None
        if not ok:
            raise DeliveryError("the push service refused or could not be reached")
