"""What a notifier is, the message it sends, and its registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for one target, as stored in the outbox."""

    id: int
    alert_id: str
    target: str
    # Stable per (alert transition, target): a receiver that sees it twice can drop the copy.
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    snapshot: bytes | None = None


class DeliveryError(Exception):
    """A send failed; ``retry_after`` is the receiver's own hint (HTTP 429/503), if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Notifier(Protocol):
    """Sends deliveries to one configured target (a webhook URL, an Apprise URL, MQTT)."""

    kind: ClassVar[str]
    target: str

    def wants(self, alert: dict[str, Any]) -> bool:
        """Whether this target should hear about the alert (severity, audiences)."""
        ...

    async def send(self, delivery: Delivery) -> None:
        """Send once; raise :class:`DeliveryError` on failure (the outbox retries)."""
        ...


NOTIFIERS: dict[str, type[Any]] = {}


def register_notifier(kind: str) -> Any:
    """Register a notifier class under ``kind``; duplicates are refused."""

    def register(cls: type[Any]) -> type[Any]:
        if kind in NOTIFIERS:
            raise ValueError(f"notifier {kind!r} is already registered")
        cls.kind = kind
        NOTIFIERS[kind] = cls
        return cls

    return register
