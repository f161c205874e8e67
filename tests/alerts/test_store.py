"""The alert store: lifecycle, idempotent raises, audit, outbox rows, escalation, quiet hours."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from doorwatch.alerts.service import Escalator, TargetChooser, route_audiences, schedule_on_duty
from doorwatch.alerts.store import AlertError, AlertRequest, AlertStore
from doorwatch.config.models import Config
from doorwatch.notify.outbox import MIGRATIONS as OUTBOX
from doorwatch.rules.config import Severity
from doorwatch.storage import Database

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def request(
    trigger: str, *, at: timedelta = timedelta(0), severity=Severity.HIGH, **kw
) -> AlertRequest:
    base = {
        "rule": "door_held_open",
        "rule_type": "door_held_open",
        "subject": "door:gym-east",
        "title": "Gym east held open",
        "door": "gym-east",
        "door_name": "Gym east",
        "zone": "athletics",
        "audiences": ("guards",),
    }
    base.update(kw)
    return AlertRequest(severity=severity, at=T0 + at, trigger=trigger, **base)


@pytest.fixture
async def store(tmp_path):
    db = await Database.open(tmp_path / "a.db")
    await db.migrate(OUTBOX)
    s = AlertStore(
        db, site="Test High", site_id="test-high", targets=lambda alert, action: ["hook"]
    )
    await s.setup()
    yield s
    await db.close()


async def outbox_keys(store: AlertStore) -> list[str]:
    rows = await store.db.call(
        lambda c: c.execute("SELECT idempotency_key, payload FROM outbox ORDER BY id").fetchall()
    )
    return [f"{r[0]}={orjson.loads(r[1])['action']}" for r in rows]


async def test_raise_then_repeat_counts_occurrences_once_per_trigger(store):
    """A second raise of the same rule+subject is an occurrence; a repeated trigger is ignored."""
    first = await store.raise_alert(request("e1"))
    assert first is not None
    assert first.action == "raised"
    assert first.alert["state"] == "active"
    assert first.alert["occurrences"] == 1
    assert await store.raise_alert(request("e1")) is None  # The same event after a crash.
    second = await store.raise_alert(request("e2", at=timedelta(seconds=5)))
    assert second is not None
    assert second.action == "updated"
    assert second.alert["id"] == first.alert["id"]
    assert second.alert["occurrences"] == 2
    assert len(await store.query()) == 1


async def test_higher_severity_repeat_escalates(store):
    """A pre-alarm (low) followed by the alarm (high) is one alert, escalated."""
    await store.raise_alert(request("pre", severity=Severity.LOW, title="Gym east open 20 s"))
    change = await store.raise_alert(request("alarm", severity=Severity.HIGH))
    assert change is not None
    assert change.action == "escalated"
    assert change.alert["severity"] == "high"
    assert change.alert["title"] == "Gym east held open"


async def test_cleared_but_unacknowledged_stays_until_someone_acknowledges(store):
    """The door closes: the alert stays active and marked cleared; acknowledging resolves it."""
    raised = await store.raise_alert(request("e1"))
    assert raised is not None
    cleared = await store.clear(
        "door_held_open",
        "door:gym-east",
        at=T0 + timedelta(seconds=40),
        trigger="c1",
        reason="door closed",
    )
    assert cleared is not None
    assert cleared.action == "cleared"
    assert cleared.alert["state"] == "active"
    assert cleared.alert["condition_cleared"] is True
    done = await store.acknowledge(
        raised.alert["id"],
        user="ann",
        role_may_force=False,
        note=None,
        address="10.0.0.5",
        at=T0 + timedelta(minutes=2),
    )
    assert done.action == "resolved"
    assert done.alert["state"] == "resolved"
    assert done.alert["acknowledged_by"] == "ann"
    audit = await store.audit(raised.alert["id"])
    assert [a["action"] for a in audit] == ["raised", "cleared", "acknowledged", "resolved"]
    assert audit[2]["actor"] == "ann"
    assert audit[2]["address"] == "10.0.0.5"


async def test_acknowledged_then_cleared_resolves_by_itself(store):
    """An acknowledged held-open alert resolves when the door closes, with no one's name."""
    raised = await store.raise_alert(request("e1"))
    assert raised is not None
    await store.acknowledge(
        raised.alert["id"],
        user="sam",
        role_may_force=True,
        note="on my way",
        address=None,
        at=T0 + timedelta(seconds=10),
    )
    change = await store.clear(
        "door_held_open",
        "door:gym-east",
        at=T0 + timedelta(seconds=50),
        trigger="c1",
        reason="door closed",
    )
    assert change is not None
    assert change.action == "resolved"
    assert change.alert["resolved_by"] is None
    assert change.alert["notes"][0]["text"] == "on my way"


async def test_forcing_an_uncleared_condition_needs_an_sro_and_a_note(store):
    """Guards cannot acknowledge a door that is still open; an SRO can, with a note only."""
    raised = await store.raise_alert(request("e1"))
    assert raised is not None
    alert_id = raised.alert["id"]
    with pytest.raises(AlertError) as guard:
        await store.acknowledge(
            alert_id, user="ann", role_may_force=False, note="x", address=None, at=T0
        )
    assert guard.value.status == 403
    with pytest.raises(AlertError) as no_note:
        await store.acknowledge(
            alert_id, user="sam", role_may_force=True, note="  ", address=None, at=T0
        )
    assert no_note.value.status == 400
    change = await store.acknowledge(
        alert_id,
        user="sam",
        role_may_force=True,
        note="wedge removed by custodian",
        address=None,
        at=T0,
    )
    assert change.alert["state"] == "acknowledged"
    audit = await store.audit(alert_id)
    assert audit[-1]["detail"] == {"note": "wedge removed by custodian", "forced": True}
    with pytest.raises(AlertError, match="already acknowledged by sam"):
        await store.acknowledge(
            alert_id, user="ann", role_may_force=False, note=None, address=None, at=T0
        )


async def test_momentary_alerts_close_on_acknowledgement(store):
    """A forced-door alert has no condition to wait for: a guard's acknowledgement closes it."""
    raised = await store.raise_alert(
        request("f1", rule="door_forced_open", rule_type="door_forced_open", momentary=True)
    )
    assert raised is not None
    change = await store.acknowledge(
        raised.alert["id"], user="ann", role_may_force=False, note=None, address=None, at=T0
    )
    assert change.alert["state"] == "resolved"


async def test_each_transition_is_enqueued_with_its_own_key(store):
    """Raise, clear and acknowledge each put one outbox row per target, keyed by transition."""
    raised = await store.raise_alert(request("e1"))
    assert raised is not None
    alert_id = raised.alert["id"]
    await store.clear("door_held_open", "door:gym-east", at=T0, trigger="c1", reason="closed")
    await store.acknowledge(
        alert_id, user="ann", role_may_force=False, note=None, address=None, at=T0
    )
    assert await outbox_keys(store) == [
        f"{alert_id}:1:hook=raised",
        f"{alert_id}:2:hook=cleared",
        f"{alert_id}:4:hook=resolved",
    ]


async def test_audit_trail_is_append_only(store):
    """Rewriting history is refused by the database itself."""
    await store.raise_alert(request("e1"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.db.call(lambda c: c.execute("UPDATE alert_audit SET actor = 'mallory'"))


async def test_a_new_alert_after_resolution_gets_a_new_id(store):
    """Once resolved, the same rule+subject starts a fresh alert."""
    first = await store.raise_alert(request("f1", momentary=True))
    assert first is not None
    await store.acknowledge(
        first.alert["id"], user="ann", role_may_force=False, note=None, address=None, at=T0
    )
    second = await store.raise_alert(request("f2", momentary=True))
    assert second is not None
    assert second.action == "raised"
    assert second.alert["id"] != first.alert["id"]


def config(extra: dict) -> Config:
    return Config.model_validate({"site": {"name": "T"}, **extra})


async def test_escalation_steps_and_critical_reminders(store):
    """Unacknowledged after 5 min the SRO is told, after 15 min the admin; a critical alert is
    reminded every remind_critical_every until acknowledged."""
    cfg = config(
        {
            "notify": {
                "escalation": [{"after": "5m", "to": ["sro"]}, {"after": "15m", "to": ["admin"]}],
                "remind_critical_every": "2m",
            }
        }
    )
    escalator = Escalator(store, cfg)
    held = await store.raise_alert(request("e1"))
    duress = await store.raise_alert(
        request(
            "d1",
            rule="duress",
            rule_type="duress",
            subject="door:main",
            severity=Severity.CRITICAL,
            momentary=True,
        )
    )
    assert held is not None
    assert duress is not None
    assert await escalator.check(T0 + timedelta(minutes=1)) == []
    at_3 = await escalator.check(T0 + timedelta(minutes=3))
    assert [(c.action, c.alert["rule"]) for c in at_3] == [("reminded", "duress")]
    at_6 = await escalator.check(T0 + timedelta(minutes=6))
    assert sorted((c.action, c.alert["rule"], c.alert["escalation_level"]) for c in at_6) == [
        ("escalated", "door_held_open", 1),
        ("escalated", "duress", 1),
    ]
    assert (await store.get(held.alert["id"]))["audiences"] == ["guards", "sro"]
    await store.acknowledge(
        duress.alert["id"],
        user="sam",
        role_may_force=True,
        note=None,
        address=None,
        at=T0 + timedelta(minutes=7),
    )
    at_16 = await escalator.check(T0 + timedelta(minutes=16))
    assert [(c.alert["rule"], c.alert["audiences"]) for c in at_16] == [
        ("door_held_open", ["admin", "guards", "sro"])
    ]
    assert await escalator.check(T0 + timedelta(minutes=17)) == []


class FakeNotifier:
    kind = "webhook"

    def __init__(self, target: str, audiences=None) -> None:
        self.target = target
        self.audiences = audiences

    def wants(self, alert):
        return not self.audiences or bool(set(alert["audiences"]) & set(self.audiences))


def test_quiet_hours_hold_back_all_but_severe_alerts():
    """Off duty, an audience's phones only get alerts at or above min_severity_off_duty; a
    target without an audience (the SOC webhook) always gets them."""
    cfg = config(
        {
            "schedules": {"day": {"weekly": {"mon-fri": ["07:00-17:00"]}}},
            "notify": {
                "audiences": {"guards": {"on_duty": "day", "min_severity_off_duty": "high"}}
            },
        }
    )
    notifiers = {
        "apprise:0": FakeNotifier("apprise:0", ["guards"]),
        "webhook:soc": FakeNotifier("webhook:soc"),
    }
    chooser = TargetChooser(cfg, notifiers, on_duty=lambda name, moment: False)
    medium = {"severity": "medium", "audiences": ["guards"]}
    high = {"severity": "high", "audiences": ["guards"]}
    assert chooser(medium, "raised") == ["webhook:soc"]
    assert chooser(high, "raised") == ["apprise:0", "webhook:soc"]
    on_duty = TargetChooser(cfg, notifiers, on_duty=lambda name, moment: True)
    assert on_duty(medium, "raised") == ["apprise:0", "webhook:soc"]


def test_routes_pick_audiences_and_fall_back_to_everyone():
    """Routes match rule, zone and severity; an alert no route matches goes to every audience."""
    cfg = config(
        {
            "notify": {
                "routes": [
                    {"audiences": ["guards-east"], "zones": ["east"]},
                    {"audiences": ["sro"], "rules": ["duress"]},
                ],
                "apprise": [{"url": "json://x", "audience": "guards"}],
            }
        }
    )

    def pick(rule, zone, severity=Severity.HIGH, explicit=None):
        return route_audiences(
            cfg, rule=rule, rule_type=rule, zone=zone, severity=severity, explicit=explicit
        )

    assert pick("door_forced_open", "east") == ("guards-east",)
    assert pick("duress", "west") == ("sro",)
    assert pick("door_forced_open", "west") == ("guards", "guards-east", "sro")
    assert pick("door_forced_open", "east", explicit=["admin"]) == ("admin",)


def test_quiet_hours_follow_the_audience_schedule_in_the_site_zone():
    """``on_duty`` names a schedule judged in the site's time zone: the same medium alert
    reaches the day guards' phones at 10:00 Chicago time on a Monday, not at 02:00, and not on
    a holiday; the SOC webhook hears it every time."""
    cfg = config(
        {
            "site": {"name": "Test High", "timezone": "America/Chicago"},
            "schedules": {
                "day": {"weekly": {"mon-fri": ["07:00-17:00"]}, "holidays": ["2026-11-26"]}
            },
            "notify": {"audiences": {"guards": {"on_duty": "day"}}},
        }
    )
    notifiers = {
        "apprise:0": FakeNotifier("apprise:0", ["guards"]),
        "webhook:soc": FakeNotifier("webhook:soc"),
    }
    medium = {"severity": "medium", "audiences": ["guards"]}
    critical = {"severity": "critical", "audiences": ["guards"]}
    on_duty = schedule_on_duty(cfg)
    assert on_duty is not None

    def targets(alert, local: str) -> list[str]:
        moment = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("America/Chicago"))
        return TargetChooser(cfg, notifiers, on_duty=on_duty, now=lambda: moment)(alert, "raised")

    assert targets(medium, "2026-11-30T10:00") == ["apprise:0", "webhook:soc"]  # Monday
    assert targets(medium, "2026-11-30T02:00") == ["webhook:soc"]
    assert targets(medium, "2026-11-26T10:00") == ["webhook:soc"]  # Thanksgiving
    assert targets(critical, "2026-11-30T02:00") == ["apprise:0", "webhook:soc"]
    assert schedule_on_duty(config({})) is None
