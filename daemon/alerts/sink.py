"""The rules engine's alert commands applied to the SQLite alert store.

The engine speaks :class:`~doorwatch.alerts.model.AlertSink`; the store speaks rows and
audit entries. This adapter translates, fills in the audiences a rule left open from the
routing table, and answers with the transitions the store made.

One difference from the in-memory book is deliberate: when a condition clears on an alert
nobody has acknowledged, the store keeps it open (``cleared``) so it stays on the console
until a person has seen it; an acknowledged one resolves.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import datetime

from doorwatch.alerts.model import (
    Alert,
    AlertCommand,
    AlertTransition,
    RaiseAlert,
    ResolveAlert,
    TransitionAction,
    UpdateAlert,
)
from doorwatch.alerts.store import AlertChange, AlertStore
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
        return await self._apply(request)

    async def update_alert(self, request: UpdateAlert) -> list[AlertTransition]:
        """See :class:`~doorwatch.alerts.model.AlertSink`."""
        return await self._apply(request)

    async def resolve_alert(self, request: ResolveAlert) -> list[AlertTransition]:
        """See :class:`~doorwatch.alerts.model.AlertSink`."""
        return await self._apply(request)

    def apply_in(self, conn: sqlite3.Connection, command: AlertCommand) -> AlertChange | None:
        """Apply one engine command inside the caller's transaction.

        The rules service writes its own state and the alerts it raises in one commit, so a
        new alert costs one disk flush less; it calls :meth:`committed` afterwards.
        """
        store = self.store
        if isinstance(command, RaiseAlert):
            return store.raise_in(conn, self._request(command))
        if isinstance(command, UpdateAlert):
            if command.fallback is not None:
                command = dataclasses.replace(command, fallback=self._request(command.fallback))
            return store.update_in(conn, command)
        return store.clear_in(
            conn,
            command.rule,
            command.subject,
            at=command.at,
            trigger=command.trigger,
            reason=command.reason,
        )

    def committed(self, command: AlertCommand, change: AlertChange | None) -> list[AlertTransition]:
        """After the commit: tell the store's listeners; the transitions the change made."""
        if change is None:
            return []
        self.store.announce(change)
        return _transitions(command.at, change)

    async def _apply(self, command: AlertCommand) -> list[AlertTransition]:
        change = await self.store.db.transaction(lambda conn: self.apply_in(conn, command))
        return self.committed(command, change)

    def _request(self, command: RaiseAlert) -> RaiseAlert:
        """The command with its audiences: the rule's own, else the routing table's."""
        if command.audiences:
            return command
        audiences = self.route(command.rule, command.rule_type, command.zone, command.severity)
        return dataclasses.replace(command, audiences=tuple(audiences))


def _transitions(at: datetime, change: AlertChange | None) -> list[AlertTransition]:
    if change is None:
        return []
    return [AlertTransition(at, TransitionAction(change.action), Alert.from_json(change.alert))]
