"""The alert model and lifecycle (AlertBook), and commands as JSON for the engine's outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorwatch.alerts.model import (
    Alert,
    AlertBook,
    AlertState,
    LifecycleError,
    RaiseAlert,
    ResolveAlert,
    TransitionAction,
    UpdateAlert,
    command_from_json,
    command_to_json,
    deliver,
)
from doorwatch.rules.config import Severity

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def raise_(trigger: str, *, seconds: float = 0, severity=Severity.HIGH, **kw) -> RaiseAlert:
    fields = {
        "rule": "door_held_open",
        "rule_type": "door_held_open",
        "subject": "door:gym-east",
        "title": "Door held open: Gym east",
        "door": "gym-east",
        "door_name": "Gym east",
        "zone": "athletics",
        "audiences": ("guards",),
    }
    fields.update(kw)
    return RaiseAlert(
        severity=severity, at=T0 + timedelta(seconds=seconds), trigger=trigger, **fields
    )


def actions(transitions) -> list[str]:
    return [t.action.value for t in transitions]


def test_raise_then_repeat_counts_occurrences_on_one_alert():
    """A second raise for the same rule+subject while it is open is an occurrence: same id,
    occurrences 2, action updated; another subject gets its own alert."""
    book = AlertBook(site="Lincoln High")
    first = book.apply(raise_("e1"))
    second = book.apply(raise_("e2", seconds=5))
    other = book.apply(raise_("e3", subject="door:main", door="main"))
    assert actions(first + second + other) == ["raised", "updated", "raised"]
    alert = book.open_alert("door_held_open", "door:gym-east")
    assert alert is not None
    assert alert.id == first[0].alert.id
    assert alert.occurrences == 2
    assert alert.site == "Lincoln High"
    assert alert.audiences == ("guards",)
    assert len(book.alerts(state="active")) == 2


def test_repeated_trigger_does_nothing():
    """The engine may re-send a command after a crash: the same trigger is applied once."""
    book = AlertBook(site="s")
    assert actions(book.apply(raise_("e1"))) == ["raised"]
    assert book.apply(raise_("e1")) == []
    repeat = ResolveAlert(
        rule="door_held_open", subject="door:gym-east", at=T0, trigger="e1", reason="x"
    )
    assert book.apply(repeat) == []
    assert book.alerts()[0].occurrences == 1


def test_higher_severity_raise_escalates_and_never_lowers():
    """A repeat with a higher severity escalates (and takes the new title); a lower one does
    not lower it."""
    book = AlertBook(site="s")
    book.apply(raise_("e1", severity=Severity.LOW, title="warning"))
    up = book.apply(raise_("e2", severity=Severity.CRITICAL, title="alarm"))
    down = book.apply(raise_("e3", severity=Severity.INFO, title="meh"))
    assert actions(up + down) == ["escalated", "updated"]
    alert = book.alerts()[0]
    assert (alert.severity, alert.title, alert.occurrences) == (Severity.CRITICAL, "alarm", 3)


def test_update_escalates_without_counting_and_falls_back_to_raise():
    """UpdateAlert changes the open alert without an occurrence; with nothing open it raises
    its fallback, and without a fallback it does nothing."""
    book = AlertBook(site="s")
    assert (
        book.apply(UpdateAlert(rule="door_held_open", subject="door:gym-east", at=T0, trigger="u0"))
        == []
    )
    book.apply(raise_("e1", severity=Severity.LOW, title="warning"))
    made = book.apply(
        UpdateAlert(
            rule="door_held_open",
            subject="door:gym-east",
            at=T0 + timedelta(seconds=10),
            trigger="u1",
            severity=Severity.HIGH,
            title="alarm",
            details={"stage": "alarm"},
        )
    )
    assert actions(made) == ["escalated"]
    alert = made[0].alert
    assert (alert.severity, alert.title, alert.occurrences) == (Severity.HIGH, "alarm", 1)
    assert alert.details["stage"] == "alarm"
    fallback = book.apply(
        UpdateAlert(
            rule="door_held_open",
            subject="door:other",
            at=T0,
            trigger="u2",
            fallback=raise_("u2", subject="door:other"),
        )
    )
    assert actions(fallback) == ["raised"]


def test_condition_cleared_resolves_but_keeps_that_nobody_acknowledged():
    """When the condition clears the alert is resolved; condition_cleared/cleared_at are set and
    acknowledged_by stays empty, so the console can show 'cleared, never acknowledged'. A new
    raise after that is a new alert."""
    book = AlertBook(site="s")
    raised = book.apply(raise_("e1"))[0].alert
    cleared = book.apply(
        ResolveAlert(
            rule="door_held_open",
            subject="door:gym-east",
            at=T0 + timedelta(seconds=40),
            trigger="c1",
            reason="door closed",
        )
    )
    assert actions(cleared) == ["resolved"]
    alert = cleared[0].alert
    assert alert.state is AlertState.RESOLVED
    assert alert.condition_cleared
    assert alert.cleared_at == T0 + timedelta(seconds=40)
    assert alert.acknowledged_by is None
    assert alert.resolved_by is None
    assert alert.details["resolution"] == "door closed"
    again = book.apply(raise_("e2", seconds=60))[0].alert
    assert again.id != raised.id


def test_acknowledge_then_clear():
    """Acknowledged first, then the condition clears: acknowledged -> resolved, with who
    acknowledged kept."""
    book = AlertBook(site="s")
    alert_id = book.apply(raise_("e1"))[0].alert.id
    acked = book.acknowledge(alert_id, by="sro", at=T0 + timedelta(seconds=5), note="on my way")
    assert actions(acked) == ["acknowledged"]
    done = book.apply(
        ResolveAlert(
            rule="door_held_open",
            subject="door:gym-east",
            at=T0 + timedelta(seconds=9),
            trigger="c",
            reason="door closed",
        )
    )
    alert = done[0].alert
    assert (alert.state, alert.acknowledged_by, alert.notes[0].text) == (
        AlertState.RESOLVED,
        "sro",
        "on my way",
    )
    with pytest.raises(LifecycleError):
        book.acknowledge(alert_id, by="sro", at=T0)


def test_momentary_alert_is_resolved_by_acknowledging_it():
    """A momentary alert (forced, duress) is born with its condition cleared; acknowledging it
    makes two transitions: acknowledged, then resolved."""
    book = AlertBook(site="s")
    alert = book.apply(
        raise_("f1", rule="door_forced_open", rule_type="door_forced_open", momentary=True)
    )[0].alert
    assert alert.condition_cleared
    assert alert.state is AlertState.ACTIVE
    made = book.acknowledge(alert.id, by="guard", at=T0 + timedelta(minutes=1))
    assert actions(made) == ["acknowledged", "resolved"]
    assert made[-1].alert.resolved_by == "guard"


def test_manual_resolve_and_unknown_alert():
    """A person may resolve an open alert by hand; unknown ids and resolved alerts refuse."""
    book = AlertBook(site="s")
    alert_id = book.apply(raise_("e1"))[0].alert.id
    made = book.resolve(alert_id, by="sro", at=T0, note="propped for a delivery")
    assert made[0].action is TransitionAction.RESOLVED
    assert made[0].alert.resolved_by == "sro"
    with pytest.raises(LifecycleError):
        book.resolve(alert_id, by="sro", at=T0)
    with pytest.raises(LifecycleError):
        book.acknowledge("nope", by="sro", at=T0)


def test_alert_json_round_trip():
    """An alert's JSON form (what a store or the API hands around) rebuilds the same alert."""
    book = AlertBook(site="s")
    alert_id = book.apply(raise_("e1", details={"stage": "alarm"}))[0].alert.id
    alert = book.acknowledge(alert_id, by="sro", at=T0, note="seen")[-1].alert
    assert Alert.from_json(alert.to_json()) == alert


def test_transition_json_is_the_replay_line():
    """A transition prints the replay contract fields."""
    made = AlertBook(site="s").apply(raise_("e1"))[0].to_json()
    assert made == {
        "time": "2026-11-30T22:00:00.000Z",
        "action": "raised",
        "alert_id": "20261130-1",
        "rule": "door_held_open",
        "rule_type": "door_held_open",
        "severity": "high",
        "title": "Door held open: Gym east",
        "door": "gym-east",
        "camera": None,
        "zone": "athletics",
        "subject": "door:gym-east",
        "state": "active",
        "occurrences": 1,
    }


@pytest.mark.parametrize(
    "command",
    [
        raise_("r", momentary=True, details={"a": 1}),
        UpdateAlert(
            rule="x",
            subject="door:a",
            at=T0,
            trigger="u",
            severity=Severity.HIGH,
            title="t",
            fallback=raise_("u"),
        ),
        UpdateAlert(rule="x", subject="door:a", at=T0, trigger="u"),
        ResolveAlert(rule="x", subject="door:a", at=T0, trigger="c", reason="door closed"),
    ],
)
def test_commands_survive_a_json_round_trip(command):
    """The engine's outbox stores commands as JSON; they come back equal."""
    assert command_from_json(command_to_json(command)) == command


async def test_the_book_is_an_alert_sink():
    """The async sink methods apply commands like apply() does."""
    book = AlertBook(site="s")
    made = await deliver(book, raise_("e1"))
    made += await deliver(
        book,
        UpdateAlert(
            rule="door_held_open",
            subject="door:gym-east",
            at=T0,
            trigger="u",
            severity=Severity.CRITICAL,
        ),
    )
    made += await deliver(
        book,
        ResolveAlert(
            rule="door_held_open", subject="door:gym-east", at=T0, trigger="c", reason="x"
        ),
    )
    assert actions(made) == ["raised", "escalated", "resolved"]
