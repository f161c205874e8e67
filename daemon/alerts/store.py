"""The alert store: alerts, their audit trail and their deliveries, in the daemon's database.

Every change to an alert is one transaction that also appends its audit entries and enqueues
its deliveries in the outbox, so an alert is stored before anyone is told of it and nobody is
told of an alert that is not stored. Raises are idempotent by trigger: the rules engine may
repeat a command after a crash (it re-reads events past its cursor) without counting an
occurrence twice.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from doorwatch.alerts.model import RaiseAlert, UpdateAlert
from doorwatch.events import iso
from doorwatch.notify.base import Delivery
from doorwatch.notify.outbox import enqueue
from doorwatch.rules.config import Severity
from doorwatch.storage import Database, Migration

log = structlog.get_logger(__name__)

MIGRATIONS = [
    Migration(
        "alerts-1",
        """
        CREATE TABLE alerts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            rule TEXT NOT NULL,
            rule_type TEXT NOT NULL,
            subject TEXT NOT NULL,
            severity TEXT NOT NULL,
            title TEXT NOT NULL,
            site TEXT NOT NULL,
            door TEXT,
            door_name TEXT,
            camera TEXT,
            zone TEXT,
            state TEXT NOT NULL CHECK (state IN ('active', 'acknowledged', 'resolved')),
            condition_cleared INTEGER NOT NULL DEFAULT 0,
            cleared_at REAL,
            raised_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            acknowledged_by TEXT,
            acknowledged_at REAL,
            resolved_by TEXT,
            resolved_at REAL,
            occurrences INTEGER NOT NULL DEFAULT 1,
            audiences TEXT NOT NULL DEFAULT '[]',
            escalation_level INTEGER NOT NULL DEFAULT 0,
            reminded_at REAL,
            transitions INTEGER NOT NULL DEFAULT 1,
            notes TEXT NOT NULL DEFAULT '[]',
            details TEXT NOT NULL DEFAULT '{}',
            snapshot BLOB
        );
        CREATE UNIQUE INDEX alerts_one_open ON alerts(rule, subject) WHERE state != 'resolved';
        CREATE INDEX alerts_state ON alerts(state, seq);
        CREATE INDEX alerts_raised ON alerts(raised_at);
        CREATE TABLE alert_triggers (
            trigger TEXT PRIMARY KEY,
            alert_id TEXT NOT NULL
        );
        CREATE TABLE alert_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            address TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX alert_audit_alert ON alert_audit(alert_id, id);
        CREATE TRIGGER alert_audit_append_only BEFORE UPDATE ON alert_audit
        BEGIN
            SELECT RAISE(ABORT, 'the audit trail is append-only');
        END
        """,
    )
]

# A snapshot is evidence for a guard's phone, not a recording: cap what one alert may hold.
SNAPSHOT_MAX_BYTES = 512 * 1024


# The store takes the rules engine's own commands: raise (or repeat) an alert, or change the
# open one in place. Callers outside the engine (tests, tools) build them the same way.
AlertRequest = RaiseAlert


@dataclass(frozen=True, slots=True)
class AlertChange:
    """A committed transition: what happened and the alert as it now is (API JSON)."""

    action: str
    alert: dict[str, Any]
    # The deliveries this transition queued, handed to the outbox worker after the commit.
    deliveries: tuple[Delivery, ...] = ()


class AlertError(Exception):
    """An operator's request cannot be carried out (unknown alert, wrong state, note missing)."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _iso(ts: float | None) -> str | None:
    return iso(datetime.fromtimestamp(ts, UTC)) if ts is not None else None


def alert_json(row: sqlite3.Row) -> dict[str, Any]:
    """The API form of an alert row (see docs/api.md)."""
    return {
        "id": row["id"],
        "seq": row["seq"],
        "rule": row["rule"],
        "rule_type": row["rule_type"],
        "severity": row["severity"],
        "title": row["title"],
        "site": row["site"],
        "door": row["door"],
        "door_name": row["door_name"],
        "camera": row["camera"],
        "zone": row["zone"],
        "subject": row["subject"],
        "state": row["state"],
        "condition_cleared": bool(row["condition_cleared"]),
        "cleared_at": _iso(row["cleared_at"]),
        "raised_at": _iso(row["raised_at"]),
        "updated_at": _iso(row["updated_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "resolved_by": row["resolved_by"],
        "resolved_at": _iso(row["resolved_at"]),
        "occurrences": row["occurrences"],
        "audiences": orjson.loads(row["audiences"]),
        "escalation_level": row["escalation_level"],
        "reminded_at": _iso(row["reminded_at"]),
        "notes": orjson.loads(row["notes"]),
        "has_snapshot": bool(row["has_snapshot"]) if "has_snapshot" in row.keys() else False,  # noqa: SIM118
        "details": orjson.loads(row["details"]),
    }


_COLUMNS = (
    "seq, id, rule, rule_type, subject, severity, title, site, door, door_name, camera, zone,"
    " state, condition_cleared, cleared_at, raised_at, updated_at, acknowledged_by,"
    " acknowledged_at, resolved_by, resolved_at, occurrences, audiences, escalation_level,"
    " reminded_at, transitions, notes, details, snapshot IS NOT NULL AS has_snapshot"
)

# Chooses the delivery targets of a transition from the alert JSON; wired by the daemon.
TargetChooser = Callable[[dict[str, Any], str], Iterable[str]]
# Told after each commit (console stream, outbox wake-up, metrics).
Listener = Callable[[AlertChange], None]


class AlertStore:
    """Alerts in SQLite, with the lifecycle rules of DESIGN.md and an append-only audit."""

    def __init__(
        self,
        db: Database,
        *,
        site: str,
        site_id: str,
        targets: TargetChooser | None = None,
    ) -> None:
        self.db = db
        self.site = site
        self.site_id = site_id
        self.targets: TargetChooser = targets or (lambda _alert, _action: ())
        self.listeners: list[Listener] = []

    async def setup(self) -> None:
        """Create the tables on first use."""
        await self.db.migrate(MIGRATIONS)

    # ----- reads -----

    async def get(self, alert_id: str) -> dict[str, Any] | None:
        """One alert by id."""
        row = await self.db.call(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE id = ?",  # noqa: S608
                (alert_id,),
            ).fetchone()
        )
        return alert_json(row) if row is not None else None

    async def open_alert(self, rule: str, subject: str) -> dict[str, Any] | None:
        """The unresolved alert of a rule about a subject, if any."""
        row = await self.db.call(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE rule = ? AND subject = ?"  # noqa: S608
                " AND state != 'resolved'",
                (rule, subject),
            ).fetchone()
        )
        return alert_json(row) if row is not None else None

    async def query(
        self,
        *,
        states: Sequence[str] = ("active", "acknowledged"),
        limit: int = 200,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts in the given states, newest first."""
        clauses = [f"state IN ({','.join('?' * len(states))})"]
        params: list[Any] = list(states)
        if since is not None:
            clauses.append("raised_at >= ?")
            params.append(_ts(since))
        if until is not None:
            clauses.append("raised_at < ?")
            params.append(_ts(until))
        params.append(limit)
        sql = (
            f"SELECT {_COLUMNS} FROM alerts WHERE {' AND '.join(clauses)}"  # noqa: S608
            " ORDER BY seq DESC LIMIT ?"
        )
        rows = await self.db.call(lambda c: c.execute(sql, params).fetchall())
        return [alert_json(r) for r in rows]

    async def audit(self, alert_id: str) -> list[dict[str, Any]]:
        """The audit trail of one alert, oldest first."""
        rows = await self.db.call(
            lambda c: c.execute(
                "SELECT at, action, actor, address, detail FROM alert_audit WHERE alert_id = ?"
                " ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        return [
            {
                "at": _iso(r["at"]),
                "action": r["action"],
                "actor": r["actor"],
                "address": r["address"],
                "detail": orjson.loads(r["detail"]),
            }
            for r in rows
        ]

    async def snapshot(self, alert_id: str) -> bytes | None:
        """The JPEG captured when the alert was raised, if any."""
        row = await self.db.call(
            lambda c: c.execute("SELECT snapshot FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        )
        return bytes(row[0]) if row is not None and row[0] is not None else None

    async def counts(self) -> dict[str, int]:
        """Alerts by state."""
        rows = await self.db.call(
            lambda c: c.execute("SELECT state, COUNT(*) FROM alerts GROUP BY state").fetchall()
        )
        return dict(rows)

    # ----- what rules do -----

    async def raise_alert(self, request: AlertRequest) -> AlertChange | None:
        """Raise a new alert, or count another occurrence of the open one; None if a repeat."""
        return await self._commit(lambda conn: self._raise(conn, request))

    def raise_in(self, conn: sqlite3.Connection, request: AlertRequest) -> AlertChange | None:
        """:meth:`raise_alert` inside the caller's transaction (call :meth:`announce` after)."""
        return self._raise(conn, request)

    async def update_alert(self, request: UpdateAlert) -> AlertChange | None:
        """Change the open alert without counting an occurrence (a warning becoming an alarm).

        The severity only goes up. With no open alert, ``request.fallback`` is raised instead,
        so an alarm never depends on its warning still being open. None for a repeat, or when
        nothing is open and there is no fallback.
        """
        return await self._commit(lambda conn: self.update_in(conn, request))

    def update_in(self, conn: sqlite3.Connection, request: UpdateAlert) -> AlertChange | None:
        """:meth:`update_alert` inside the caller's transaction (call :meth:`announce` after)."""
        if self._seen(conn, request.trigger):
            return None
        row = self._open_row(conn, request.rule, request.subject)
        if row is None:
            return self._raise(conn, request.fallback) if request.fallback else None
        old = Severity(row["severity"])
        severity = max(old, request.severity or old, key=lambda s: s.rank)
        action = "escalated" if severity != old else "updated"
        at = _ts(request.at)
        conn.execute(
            "UPDATE alerts SET severity = ?, title = ?, updated_at = ?,"
            " transitions = transitions + 1, details = ? WHERE id = ?",
            (
                severity.value,
                request.title or row["title"],
                at,
                orjson.dumps({**orjson.loads(row["details"]), **request.details}).decode(),
                row["id"],
            ),
        )
        self._remember(conn, request.trigger, row["id"])
        detail = {"severity": severity.value, **request.details}
        return self._transition(conn, row["id"], action, "system", None, at, detail)

    async def clear(
        self, rule: str, subject: str, *, at: datetime, trigger: str, reason: str
    ) -> AlertChange | None:
        """The condition is over (door closed, device back).

        An acknowledged alert resolves by itself. An unacknowledged one stays active, marked
        cleared, so the console keeps it until a person has seen it.
        """
        return await self._commit(
            lambda conn: self.clear_in(conn, rule, subject, at=at, trigger=trigger, reason=reason)
        )

    def clear_in(
        self,
        conn: sqlite3.Connection,
        rule: str,
        subject: str,
        *,
        at: datetime,
        trigger: str,
        reason: str,
    ) -> AlertChange | None:
        """:meth:`clear` inside the caller's transaction (call :meth:`announce` after)."""
        if conn.execute("SELECT 1 FROM alert_triggers WHERE trigger = ?", (trigger,)).fetchone():
            return None
        row = self._open_row(conn, rule, subject)
        if row is None or row["condition_cleared"]:
            return None
        when = _ts(at)
        conn.execute(
            "INSERT INTO alert_triggers(trigger, alert_id) VALUES (?, ?)", (trigger, row["id"])
        )
        if row["state"] == "acknowledged":
            conn.execute(
                "UPDATE alerts SET state = 'resolved', condition_cleared = 1, cleared_at = ?,"
                " resolved_at = ?, updated_at = ?, transitions = transitions + 1 WHERE id = ?",
                (when, when, when, row["id"]),
            )
            return self._transition(
                conn, row["id"], "resolved", "system", None, when, {"reason": reason}
            )
        conn.execute(
            "UPDATE alerts SET condition_cleared = 1, cleared_at = ?, updated_at = ?,"
            " transitions = transitions + 1 WHERE id = ?",
            (when, when, row["id"]),
        )
        return self._transition(
            conn, row["id"], "cleared", "system", None, when, {"reason": reason}
        )

    # ----- what people do -----

    async def acknowledge(
        self,
        alert_id: str,
        *,
        user: str,
        role_may_force: bool,
        note: str | None,
        address: str | None,
        at: datetime,
    ) -> AlertChange:
        """A person has seen the alert. Forcing it while the condition lasts needs a note."""
        note = (note or "").strip() or None

        def apply(conn: sqlite3.Connection) -> AlertChange:
            row = self._row(conn, alert_id)
            if row["state"] == "resolved":
                raise AlertError("the alert is already resolved")
            if row["state"] == "acknowledged":
                raise AlertError(f"already acknowledged by {row['acknowledged_by']}")
            when = _ts(at)
            forced = not row["condition_cleared"]
            if forced:
                if not role_may_force:
                    raise AlertError(
                        "the condition has not cleared; an SRO must force-acknowledge it",
                        status=403,
                    )
                if note is None:
                    raise AlertError(
                        "force-acknowledging an uncleared condition needs a note", status=400
                    )
            self._add_note(conn, row, user, note, when)
            if row["condition_cleared"]:
                conn.execute(
                    "UPDATE alerts SET state = 'resolved', acknowledged_by = ?,"
                    " acknowledged_at = ?, resolved_by = ?, resolved_at = ?, updated_at = ?,"
                    " transitions = transitions + 2 WHERE id = ?",
                    (user, when, user, when, when, alert_id),
                )
                self._audit(conn, alert_id, when, "acknowledged", user, address, {"note": note})
                return self._transition(
                    conn, alert_id, "resolved", user, address, when, {"note": note}
                )
            conn.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?,"
                " acknowledged_at = ?, updated_at = ?, transitions = transitions + 1 WHERE id = ?",
                (user, when, when, alert_id),
            )
            detail = {"note": note, "forced": forced}
            return self._transition(conn, alert_id, "acknowledged", user, address, when, detail)

        change = await self._commit(apply)
        assert change is not None
        return change

    async def resolve(
        self,
        alert_id: str,
        *,
        user: str,
        role_may_force: bool,
        note: str | None,
        address: str | None,
        at: datetime,
    ) -> AlertChange:
        """Close an alert by hand; closing one whose condition lasts needs an SRO and a note."""
        note = (note or "").strip() or None

        def apply(conn: sqlite3.Connection) -> AlertChange:
            row = self._row(conn, alert_id)
            if row["state"] == "resolved":
                raise AlertError("the alert is already resolved")
            when = _ts(at)
            uncleared = not row["condition_cleared"]
            if uncleared and (not role_may_force or note is None):
                raise AlertError(
                    "the condition has not cleared; an SRO may resolve it with a note", status=403
                )
            self._add_note(conn, row, user, note, when)
            conn.execute(
                "UPDATE alerts SET state = 'resolved', resolved_by = ?, resolved_at = ?,"
                " acknowledged_by = COALESCE(acknowledged_by, ?),"
                " acknowledged_at = COALESCE(acknowledged_at, ?), updated_at = ?,"
                " transitions = transitions + 1 WHERE id = ?",
                (user, when, user, when, when, alert_id),
            )
            return self._transition(
                conn, alert_id, "resolved", user, address, when, {"note": note, "forced": uncleared}
            )

        change = await self._commit(apply)
        assert change is not None
        return change

    async def set_snapshot(self, alert_id: str, jpeg: bytes, *, at: datetime) -> None:
        """Keep the camera picture taken at raise time (capped in size)."""
        if len(jpeg) > SNAPSHOT_MAX_BYTES:
            log.warning("snapshot too large; not stored", alert_id=alert_id, size=len(jpeg))
            return

        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE alerts SET snapshot = ? WHERE id = ?", (jpeg, alert_id))
            self._audit(conn, alert_id, _ts(at), "snapshot", "system", None, {"bytes": len(jpeg)})

        await self.db.transaction(apply)

    # ----- escalation -----

    async def escalate(
        self, alert_id: str, *, level: int, audiences: Sequence[str], at: datetime, reminder: bool
    ) -> AlertChange | None:
        """Tell more people (next level) or remind the same people of an unacknowledged alert."""

        def apply(conn: sqlite3.Connection) -> AlertChange | None:
            row = self._row(conn, alert_id)
            if row["state"] != "active":
                return None
            when = _ts(at)
            merged = sorted({*orjson.loads(row["audiences"]), *audiences})
            conn.execute(
                "UPDATE alerts SET escalation_level = ?, audiences = ?, reminded_at = ?,"
                " updated_at = ?, transitions = transitions + 1 WHERE id = ?",
                (level, orjson.dumps(merged).decode(), when, when, alert_id),
            )
            action = "reminded" if reminder else "escalated"
            detail = {"level": level, "audiences": merged}
            return self._transition(conn, alert_id, action, "system", None, when, detail)

        return await self._commit(apply)

    async def prune(self, *, resolved_before: datetime) -> int:
        """Delete alerts resolved before the cutoff, with their audit trail and triggers."""
        cutoff = _ts(resolved_before)

        def apply(conn: sqlite3.Connection) -> int:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < ?", (cutoff,)
                )
            ]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                conn.execute(f"DELETE FROM alert_audit WHERE alert_id IN ({marks})", part)  # noqa: S608
                conn.execute(f"DELETE FROM alert_triggers WHERE alert_id IN ({marks})", part)  # noqa: S608
                conn.execute(f"DELETE FROM alerts WHERE id IN ({marks})", part)  # noqa: S608
            return len(ids)

        return await self.db.transaction(apply)

    # ----- internals -----

    def _raise(self, conn: sqlite3.Connection, request: AlertRequest) -> AlertChange | None:
        if self._seen(conn, request.trigger):
            return None
        at = _ts(request.at)
        row = self._open_row(conn, request.rule, request.subject)
        if row is None:
            alert_id = self._new_id(conn, request.at)
            conn.execute(
                "INSERT INTO alerts(id, rule, rule_type, subject, severity, title, site, door,"
                " door_name, camera, zone, state, raised_at, updated_at, audiences, details,"
                " condition_cleared, cleared_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,'active',?,?,?,?,?,?)",
                (
                    alert_id,
                    request.rule,
                    request.rule_type,
                    request.subject,
                    request.severity.value,
                    request.title,
                    self.site,
                    request.door,
                    request.door_name,
                    request.camera,
                    request.zone,
                    at,
                    at,
                    orjson.dumps(list(request.audiences)).decode(),
                    orjson.dumps(dict(request.details)).decode(),
                    int(request.momentary),
                    at if request.momentary else None,
                ),
            )
            action = "raised"
            detail: dict[str, Any] = {"severity": request.severity.value, **request.details}
        else:
            alert_id = row["id"]
            severity = max(Severity(row["severity"]), request.severity, key=lambda s: s.rank)
            action = "escalated" if severity != Severity(row["severity"]) else "updated"
            # A repeat of a lasting condition means it is back; a repeated moment is over.
            conn.execute(
                "UPDATE alerts SET occurrences = occurrences + 1, severity = ?, title = ?,"
                " updated_at = ?, condition_cleared = ?, cleared_at = ?,"
                " transitions = transitions + 1, details = ? WHERE id = ?",
                (
                    severity.value,
                    request.title if action == "escalated" else row["title"],
                    at,
                    int(request.momentary),
                    at if request.momentary else None,
                    orjson.dumps({**orjson.loads(row["details"]), **request.details}).decode(),
                    alert_id,
                ),
            )
            detail = {"severity": severity.value, "occurrences": row["occurrences"] + 1}
        self._remember(conn, request.trigger, alert_id)
        return self._transition(conn, alert_id, action, "system", None, at, detail)

    @staticmethod
    def _seen(conn: sqlite3.Connection, trigger: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM alert_triggers WHERE trigger = ?", (trigger,)).fetchone()
            is not None
        )

    @staticmethod
    def _remember(conn: sqlite3.Connection, trigger: str, alert_id: str) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO alert_triggers(trigger, alert_id) VALUES (?, ?)",
            (trigger, alert_id),
        )

    def announce(self, change: AlertChange) -> None:
        """Tell the listeners (outbox, console stream, metrics) of a committed change."""
        for listener in self.listeners:
            listener(change)

    async def _commit(
        self, apply: Callable[[sqlite3.Connection], AlertChange | None]
    ) -> AlertChange | None:
        change = await self.db.transaction(apply)
        if change is not None:
            self.announce(change)
        return change

    def _new_id(self, conn: sqlite3.Connection, at: datetime) -> str:
        # Date, a running number and a random tail: readable on a radio, and unique even if
        # the database is ever recreated (receivers dedupe on it).
        number = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts").fetchone()[0]
        return f"{at.astimezone(UTC):%Y%m%d}-{number}-{secrets.token_hex(2)}"

    @staticmethod
    def _open_row(conn: sqlite3.Connection, rule: str, subject: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE rule = ? AND subject = ?"  # noqa: S608
            " AND state != 'resolved'",
            (rule, subject),
        ).fetchone()
        return row

    @staticmethod
    def _row(conn: sqlite3.Connection, alert_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE id = ?",  # noqa: S608
            (alert_id,),
        ).fetchone()
        if row is None:
            raise AlertError(f"no alert {alert_id!r}", status=404)
        return row

    @staticmethod
    def _add_note(
        conn: sqlite3.Connection, row: sqlite3.Row, user: str, note: str | None, when: float
    ) -> None:
        if note is None:
            return
        notes = orjson.loads(row["notes"])
        notes.append({"at": _iso(when), "by": user, "text": note[:2000]})
        conn.execute(
            "UPDATE alerts SET notes = ? WHERE id = ?", (orjson.dumps(notes).decode(), row["id"])
        )

    @staticmethod
    def _audit(  # noqa: PLR0917 - the columns of one audit row, in order.
        conn: sqlite3.Connection,
        alert_id: str,
        when: float,
        action: str,
        actor: str,
        address: str | None,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO alert_audit(alert_id, at, action, actor, address, detail)"
            " VALUES (?,?,?,?,?,?)",
            (alert_id, when, action, actor, address, orjson.dumps(detail).decode()),
        )

    def _transition(  # noqa: PLR0917 - mirrors _audit, plus the outbox.
        self,
        conn: sqlite3.Connection,
        alert_id: str,
        action: str,
        actor: str,
        address: str | None,
        when: float,
        detail: dict[str, Any],
    ) -> AlertChange:
        self._audit(conn, alert_id, when, action, actor, address, detail)
        row = self._row(conn, alert_id)
        alert = alert_json(row)
        payload = {
            "action": action,
            "time": _iso(when),
            "site": self.site_id,
            "alert": alert,
        }
        targets = list(self.targets(alert, action))
        deliveries = enqueue(conn, alert_id, row["transitions"], payload, targets)
        return AlertChange(action, alert, tuple(deliveries))
