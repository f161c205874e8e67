"""Health checks: each part of the daemon reports whether it is doing its job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One part's health: fine or not, and a short human sentence."""

    ok: bool
    detail: str


HealthCheck = Callable[[], CheckResult]


class Health:
    """A named set of checks; the daemon is healthy when every check passes."""

    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {}
        self.ready = False

    def add(self, name: str, check: HealthCheck) -> None:
        """Register a check under a name (``mqtt``, ``storage``, ``camera:cam-east``)."""
        self._checks[name] = check

    def report(self) -> tuple[bool, dict[str, Any]]:
        """Run every check; return overall health and a JSON-able report."""
        checks = {name: check() for name, check in self._checks.items()}
        healthy = self.ready and all(result.ok for result in checks.values())
        return healthy, {
            "status": "ok" if healthy else ("starting" if not self.ready else "degraded"),
            "checks": {
                name: {"ok": result.ok, "detail": result.detail} for name, result in checks.items()
            },
        }
