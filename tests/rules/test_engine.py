"""The engine: registry, ids, filters, unmapped doors, isolation of broken rules, the API's
guarantees (replayed input never raises), timing from received_at."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from rules_site import SITE, make_site, play

from doorwatch.config.models import Config
from doorwatch.errors import ConfigError
from doorwatch.events import Event, EventKind
from doorwatch.rules.clock import VirtualClock
from doorwatch.rules.config import DuressOptions, Severity, rule_ids
from doorwatch.rules.engine import RulesEngine
from doorwatch.rules.registry import RULE_TYPES, register
from doorwatch.state import StateStore
from doorwatch.testing import RuleHarness

BUILTINS = {
    "door_held_open",
    "door_forced_open",
    "after_hours_access",
    "access_denied_burst",
    "duress",
    "device_offline",
    "camera_tamper",
    "camera_offline",
}


def write_rule(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body).lstrip())
    return str(path)


def test_every_builtin_type_is_registered_and_duplicates_are_refused():
    """The registry holds the eight contract names; registering a name twice is an error."""
    assert set(RULE_TYPES) == BUILTINS
    with pytest.raises(ValueError, match="already registered"):

        @register("duress", options=DuressOptions, severity=Severity.LOW, title="x")
        def setup(rule):  # pragma: no cover - never registered.
            del rule


def test_rule_ids_default_to_type_with_numbers_and_module_names():
    """Ids default to the type (type-2 for repeats, skipping explicit ids); custom rules are
    named after their module."""
    config = Config.model_validate(
        {
            "site": {"name": "s"},
            "rules": [
                {"type": "duress"},
                {"type": "duress", "id": "duress-2"},
                {"type": "duress"},
                {"module": "/etc/doorwatch/rules.d/tailgating.py"},
                {"module": "acme.rules.lockdown"},
            ],
        }
    )
    assert rule_ids(list(config.rules)) == [
        "duress",
        "duress-2",
        "duress-3",
        "tailgating",
        "lockdown",
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{type: duress, title: 'Help at {door_nme}'}", "unknown placeholder {door_nme}"),
        ("{type: duress, title: 'Help at {door_name!r}'}", "no format spec"),
        ("{type: door_held_open, held_open_after: 20s, prealarm_after: 30s}", "shorter"),
        ("{type: door_forced_open, shunt: soon}", "duration"),
        ("{type: teleporter}", "unknown rule type"),
    ],
)
def test_bad_rule_options_are_config_errors(rule, message):
    """Rule option mistakes are caught when the config is validated."""
    with pytest.raises(ConfigError, match=message):
        make_site(f"- {rule}")


def test_a_disabled_rule_does_nothing():
    """enabled: false keeps an instance in the config without running it."""
    site = make_site("- {type: duress, enabled: false}")
    assert play(site, "main duress") == []


def test_a_broken_handler_is_logged_and_other_rules_carry_on(tmp_path):
    """A custom rule whose handler raises does not stop the built-in rules on the same event."""
    path = write_rule(
        tmp_path,
        "broken",
        """
        from doorwatch.rules.api import EventKind

        def setup(rule):
            @rule.on(EventKind.ACCESS_DURESS)
            def boom(event):
                raise RuntimeError("bug in a custom rule")
        """,
    )
    site = make_site(f"- {{module: {path}}}\n- {{type: duress}}")
    assert play(site, "main duress") == ["0s raised duress critical"]
    assert site._rules.engine.handler_errors == 1


def test_replayed_input_never_raises_even_for_a_custom_rule(tmp_path):
    """A custom rule subscribed with include_replayed may see replayed events but cannot raise
    from them, nor from a timer started while handling one; it can still resolve."""
    path = write_rule(
        tmp_path,
        "eager",
        """
        from doorwatch.rules.api import EventKind

        def setup(rule):
            @rule.on(EventKind.DOOR_OPENED, include_replayed=True)
            def opened(event):
                rule.raise_alert(event=event)
                rule.start_timer(f"later:{event.door}", "10s")

            @rule.on_timer("later")
            def later(timer):
                rule.raise_alert(event=timer.event)
        """,
    )
    site = make_site(f"- {{module: {path}}}")
    assert play(site, "main opens replayed\nwait 1m") == []
    assert play(site, "main opens") == ["0s raised eager medium"]


def test_alerts_only_from_handlers_and_timer_data_must_be_json(tmp_path):
    """raise_alert outside a handler is a programming error; timer data must be JSON."""
    path = write_rule(
        tmp_path,
        "strict",
        """
        from datetime import datetime
        from doorwatch.rules.api import EventKind

        def setup(rule):
            @rule.on(EventKind.DOOR_OPENED)
            def opened(event):
                rule.start_timer("t", 5, data={"when": datetime.now()})
        """,
    )
    site = make_site(f"- {{module: {path}}}")
    play(site, "main opens")
    assert site._rules.engine.handler_errors == 1
    context = site._rules.engine.rules["strict"]
    with pytest.raises(RuntimeError, match="from a handler"):
        context.raise_alert(door="main")


def test_unmapped_doors_reach_unfiltered_instances_and_only_one_filtered_one():
    """With no unfiltered forced-open instance, the first filtered one takes unmapped doors
    (one alert, not two); an unfiltered instance takes them instead when there is one."""
    filtered = make_site(
        """
        - {type: door_forced_open, doors: [main]}
        - {type: door_forced_open, doors: [gym-east]}
        """
    )
    assert play(filtered, "ref:405419896:9 forced") == ["0s raised door_forced_open critical"]
    mixed = make_site(
        """
        - {type: door_forced_open, doors: [main]}
        - {type: door_forced_open, id: everywhere}
        """
    )
    assert play(mixed, "ref:405419896:9 forced") == ["0s raised everywhere critical"]


def test_custom_rule_with_a_zone_filter_does_not_get_unmapped_doors(tmp_path):
    """Only native forced/held alarms are routed past filters; other rules filter strictly."""
    path = write_rule(
        tmp_path,
        "opens",
        """
        from doorwatch.rules.api import EventKind

        def setup(rule):
            @rule.on(EventKind.DOOR_OPENED)
            def opened(event):
                rule.raise_alert(event=event, momentary=True)
        """,
    )
    site = make_site(f"- {{module: {path}, zones: [perimeter]}}")
    assert play(site, "ref:405419896:9 opens\nmain opens\ngym-east opens") == [
        "0s raised opens medium"
    ]


def test_subscription_filters_combine_with_the_instance_filters(tmp_path):
    """doors/zones/where of a subscription narrow the instance's own filters further."""
    path = write_rule(
        tmp_path,
        "narrow",
        """
        from doorwatch.rules.api import EventKind

        def setup(rule):
            @rule.on(EventKind.ACCESS_GRANTED, doors=["main", "gym-east"],
                     where=lambda e: e.holder != "Janitor")
            def granted(event):
                rule.raise_alert(event=event, momentary=True, title="{holder} at {door_name}")
        """,
    )
    site = make_site(f"- {{module: {path}, zones: [perimeter, admin]}}")
    play(
        site,
        "main badge holder=Janitor\nmain badge holder=Ann\ngym-east badge holder=Bo\n"
        "sro-office badge holder=Cy",
    )
    assert [a.title for a in site.alerts()] == ["Ann at Main entrance"]


def test_a_late_event_is_not_given_its_full_delay_again():
    """Timers count from received_at: an event handled 25 s after it was received (catch-up)
    alarms 5 s later, not 30 s later."""
    config = RuleHarness(SITE + "rules: [{type: door_held_open}]").config
    start = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
    clock = VirtualClock(start)
    engine = RulesEngine(config, StateStore(), clock)
    clock.advance(25)
    engine.process(
        Event(
            kind=EventKind.DOOR_OPENED,
            source="uhppote",
            door="main",
            received_at=start,
            dedupe_key="late",
        )
    )
    assert engine.timers[0].due_at == start + timedelta(seconds=30)
    clock.advance(4.9)
    assert engine.take_changes().commands == []
    clock.advance(0.1)
    (command,) = engine.take_changes().commands
    assert command.at == start + timedelta(seconds=30)


def test_fire_due_by_runs_timers_that_fell_due_before_the_next_event():
    """Catch-up fires timers due before an event first: a door closed *after* its alarm time
    still gets its alarm (then resolved), exactly as it would have live."""
    config = RuleHarness(SITE + "rules: [{type: door_held_open}]").config
    start = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
    engine = RulesEngine(config, StateStore(), VirtualClock(start + timedelta(hours=1)))

    def event(kind: EventKind, seconds: float, key: str) -> Event:
        return Event(
            kind=kind,
            source="uhppote",
            door="main",
            received_at=start + timedelta(seconds=seconds),
            dedupe_key=key,
        )

    for item in (event(EventKind.DOOR_OPENED, 0, "o"), event(EventKind.DOOR_CLOSED, 45, "c")):
        engine.fire_due_by(item.received_at)
        engine.process(item)
    commands = engine.take_changes().commands
    assert [type(c).__name__ for c in commands] == ["UpdateAlert", "ResolveAlert"]
    assert [c.at for c in commands] == [
        start + timedelta(seconds=30),
        start + timedelta(seconds=45),
    ]


def test_spans_begun_before_a_restart_are_measured_on_the_monotonic_clock_after_it():
    """A stamp from the previous process on the same boot is compared on the monotonic clock,
    so a wall-clock step during the restart neither stretches nor shrinks the span; from
    another boot (another timeline) only the wall clock can say."""
    config = RuleHarness(SITE + "rules: [{type: door_held_open}]").config
    start = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
    before_clock = VirtualClock(start)
    before_clock.advance(100)
    before = RulesEngine(config, StateStore(), before_clock).stamp(before_clock.now())
    # The restarted daemon: the same timeline 8 s on, while NTP stepped the wall an hour back.
    after_clock = VirtualClock(start - timedelta(hours=1))
    after_clock._epoch = before_clock.epoch  # The same boot.
    after_clock.advance(108)
    after = RulesEngine(config, StateStore(), after_clock)
    assert after.seconds_between(before, after.stamp(after_clock.now())) == 8
    rebooted_clock = VirtualClock(start + timedelta(seconds=108) - timedelta(hours=1))
    rebooted = RulesEngine(config, StateStore(), rebooted_clock)
    assert rebooted.seconds_between(before, rebooted.stamp(rebooted_clock.now())) == 8 - 3600


def test_the_real_clock_names_the_kernels_boot():
    """Every process on this boot shares the timeline of time.monotonic()."""
    from pathlib import Path

    from doorwatch.rules.clock import RealClock

    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert RealClock().epoch == RealClock().epoch == f"boot:{boot_id}"
