"""The rules engine's alert commands applied to the SQLite alert store.

The engine speaks :class:`~doorwatch.alerts.model.AlertSink`; the store speaks rows and
audit entries. This adapter translates, fills in the audiences a rule left open from the
routing table, and answers with the transitions the store made.

One difference from the in-memory book is deliberate: when a condition clears on an alert
nobody has acknowledged, the store keeps it open (``cleared``) so it stays on the console
until a person has seen it; an acknowledged one resolves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from doorwatch.alerts.model import (
    Alert,
    AlertTransition,
    RaiseAlert,
    ResolveAlert,
    TransitionAction,
    UpdateAlert,
)
from doorwatch.alerts.store import AlertChange, AlertRequest, AlertStore, AlertUpdate
from doorwatch.rules.config import Severity

# Chooses the audiences of an alert whose rule named none: (rule, rule_type, zone, severity).
AudienceRouter = Callable[[str, str, str | None, Severity], tuple[str, ...]]


class StoreSink:
    """An :class:`~doorwatch.alerts.model.AlertSink` over :class:`AlertStore`."""

    def __init__(self, store: AlertStore, route: AudienceRouter) -> None:
        self.store = store
        self.route = route

    async def raise_alert(self, request: RaiseAlert) -> list[AlertTransition]:
        """See :class:`~doorwatch.alerts.model.AlertSink`."""
        return _transitions(request.at, await self.store.raise_alert(self._request(request)))

    async def update_alert(self, request: UpdateAlert) -> list[AlertTransition]:
        """See :class:`~doorwatch.alerts.model.AlertSink`."""
        update = AlertUpdate(
            rule=request.rule,
            subject=request.subject,
            at=request.at,
            trigger=request.trigger,
            severity=request.severity,
            title=request.title,
            details=dict(request.details),
            fallback=self._request(request.fallback) if request.fallback else None,
        )
        return _transitions(request.at, await self.store.update_alert(update))

    async def resolve_alert(self, request: ResolveAlert) -> list[AlertTransition]:
        """See :class:`~doorwatch.alerts.model.AlertSink`."""
        change = await self.store.clear(
            request.rule,
            request.subject,
            at=request.at,
            trigger=request.trigger,
            reason=request.reason,
        )
        return _transitions(request.at, change)

    def _request(self, command: RaiseAlert) -> AlertRequest:
        audiences = command.audiences or self.route(
            command.rule, command.rule_type, command.zone, command.severity
        )
        return AlertRequest(
            rule=command.rule,
            rule_type=command.rule_type,
            subject=command.subject,
            severity=command.severity,
            title=command.title,
            at=command.at,
            trigger=command.trigger,
            door=command.door,
            door_name=command.door_name,
            camera=command.camera,
            zone=command.zone,
            audiences=tuple(audiences),
            details=dict(command.details),
            momentary=command.momentary,
        )


def _transitions(at: datetime, change: AlertChange | None) -> list[AlertTransition]:
    if change is None:
        return []
    return [AlertTransition(at, TransitionAction(change.action), Alert.from_json(change.alert))]
