"""The worked custom rule of docs/rules.md (docs/examples/tailgating.py), loaded through the
``{module: path}`` config entry and tested with the harness, as an integrator would."""

from __future__ import annotations

from pathlib import Path

import pytest

from doorwatch.rules.loader import RuleLoadError
from doorwatch.testing import RuleHarness

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
site: {name: Lincoln High, timezone: America/Chicago}
doors:
  - {id: gym-east, name: Gym east, zone: athletics}
  - {id: main, name: Main entrance, zone: perimeter}
rules:
  - module: docs/examples/tailgating.py
    options: {window: 15s}
"""


@pytest.fixture
def site() -> RuleHarness:
    return RuleHarness(CONFIG, base_dir=REPO)


def test_two_openings_on_one_badge_is_tailgating(site):
    """Badge, open, close, open again within the window: one high alert naming the holder."""
    site.door("gym-east").badge("Ann Lee").opens()
    site.advance("3s")
    site.door("gym-east").closes()
    site.advance("4s")
    site.door("gym-east").opens()
    alert = site.alert(rule="tailgating")
    assert alert.title == "Tailgating suspected: Gym east"
    assert alert.severity == "high"
    assert alert.details["holder"] == "Ann Lee"
    assert alert.details["openings"] == 2


def test_one_opening_per_badge_is_fine(site):
    """Two people, two badges, two openings: nothing."""
    site.door("gym-east").badge("Ann Lee").opens().closes()
    site.advance("4s")
    site.door("gym-east").badge("Bo Chan").opens().closes()
    assert site.alerts() == []


def test_an_opening_after_the_window_is_not_counted_against_the_grant(site):
    """The grant's window (15 s here) runs out; a later opening is another rule's business."""
    site.door("gym-east").badge("Ann Lee").opens().closes()
    site.advance("16s")
    site.door("gym-east").opens()
    assert site.alerts() == []


def test_grants_are_per_door(site):
    """A badge at the main entrance does not cover the gym door."""
    site.door("main").badge("Ann Lee").opens().closes()
    site.door("gym-east").opens().closes().opens()
    assert site.alerts() == []


def test_replayed_openings_never_raise(site):
    """Backlog messages at start-up update state but cannot make a tailgating alert."""
    site.door("gym-east").badge("Ann Lee").opens()
    site.door("gym-east").closes(replayed=True).opens(replayed=True)
    assert site.alerts() == []


def test_instance_settings_override_the_module_defaults():
    """severity: and title: in the config entry override SEVERITY and TITLE of the module."""
    site = RuleHarness(
        CONFIG.replace(
            "options: {window: 15s}",
            "options: {window: 15s, openings: 3}\n    severity: critical\n"
            "    title: 'Piggy-backing at {door_name}'",
        ),
        base_dir=REPO,
    )
    site.door("main").badge().opens().closes().opens().closes()
    assert site.alerts() == []
    site.door("main").opens()
    alert = site.alert()
    assert (alert.severity, alert.title) == ("critical", "Piggy-backing at Main entrance")


def test_bad_options_are_reported_with_their_key_path():
    """Options that do not fit the module's Options model name rules[0].options.<key>."""
    with pytest.raises(RuleLoadError) as caught:
        RuleHarness(CONFIG.replace("{window: 15s}", "{window: soon, opening: 2}"), base_dir=REPO)
    text = str(caught.value)
    assert "rules[0].options.window:" in text
    assert "rules[0].options.opening: Extra inputs are not permitted" in text
