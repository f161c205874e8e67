"""JSON webhooks with an HMAC-SHA256 signature and an idempotency key."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, ClassVar

import aiohttp
import orjson

from doorwatch.config.models import WebhookConfig
from doorwatch.notify.base import Delivery, DeliveryError, register_notifier
from doorwatch.notify.filters import audience_matches, severity_at_least

SIGNATURE_HEADER = "X-Doorwatch-Signature"
# A receiver that asks us to wait longer than this is retried after this anyway.
_MAX_RETRY_AFTER = 3600.0


def sign(key: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(_MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None  # An HTTP date: our own backoff is good enough.


@register_notifier("webhook")
class WebhookNotifier:
    """POSTs each alert transition as JSON to one URL."""

    kind: ClassVar[str]

    def __init__(
        self,
        config: WebhookConfig,
        *,
        index: int,
        secret: str | None,
        session: aiohttp.ClientSession,
    ) -> None:
        self.config = config
        self.target = f"webhook:{config.name or index}"
        self._key = secret.encode() if secret else None
        self._session = session

    def wants(self, alert: dict[str, Any]) -> bool:
        """Severity floor and audiences of this webhook."""
        return severity_at_least(alert, self.config.min_severity) and audience_matches(
            alert, self.config.audiences
        )

    async def send(self, delivery: Delivery) -> None:
        """POST the payload; any 2xx is success, anything else is retried."""
        body = orjson.dumps(delivery.payload)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.idempotency_key,
            "User-Agent": "doorwatch",
        }
        if self._key is not None:
            headers[SIGNATURE_HEADER] = sign(self._key, body)
        try:
            async with self._session.post(
                self.config.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:  # noqa: PLR2004
                    return
                raise DeliveryError(
                    f"HTTP {response.status}",
                    retry_after=_retry_after(response.headers.get("Retry-After")),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{exc.__class__.__name__}: {exc}"[:200]) from None
