"""The custom rule and its test shown in the README work as printed."""

from __future__ import annotations

import re
from pathlib import Path

from doorwatch.testing import RuleHarness

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_custom_rule_alerts_after_practice_and_not_before(tmp_path):
    rule_code = next(b for b in readme_blocks() if "def setup(rule" in b)
    (tmp_path / "gym_after_practice.py").write_text(rule_code)
    config = """
site: {name: Lincoln High, timezone: America/Chicago}
doors: [{id: gym-east, name: Gym east, zone: athletics}]
rules:
  - module: gym_after_practice.py
    audiences: [guards]
"""
    late = RuleHarness(config, start="2026-01-05T19:30", base_dir=tmp_path)
    late.door("gym-east").opens()
    alert = late.alert(rule="gym_after_practice")
    assert alert.severity == "medium"
    assert alert.title == "Gym door opened after practice: Gym east"
    assert alert.audiences == ("guards",)
    early = RuleHarness(config, start="2026-01-05T15:30", base_dir=tmp_path)
    early.door("gym-east").opens()
    assert early.alerts() == []
    # The README's harness test, run against the same rule.
    test_code = next(b for b in readme_blocks() if "def test_late_opening_alerts" in b)
    namespace: dict[str, object] = {"CONFIG": config}
    exec(compile(test_code, "README.md", "exec"), namespace)  # noqa: S102 - our own README.
    namespace["test_late_opening_alerts"].__globals__["RuleHarness"] = lambda cfg, **kw: (
        RuleHarness(cfg, base_dir=tmp_path, **kw)
    )
    namespace["test_late_opening_alerts"]()
