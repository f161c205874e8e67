"""Which targets hear of which alerts: severity floors and audiences."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from doorwatch.rules.config import Severity


def severity_at_least(alert: dict[str, Any], floor: Severity) -> bool:
    """Whether the alert is at least as severe as ``floor``."""
    try:
        return Severity(alert["severity"]).rank >= floor.rank
    except (KeyError, ValueError):
        return True  # An alert we cannot grade is delivered rather than dropped.


def audience_matches(alert: dict[str, Any], audiences: Collection[str] | None) -> bool:
    """A target with no audience hears everything; otherwise it needs a shared audience."""
    if not audiences:
        return True
    return bool(set(alert.get("audiences") or ()) & set(audiences))
