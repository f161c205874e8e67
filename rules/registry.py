"""The registry of built-in rule types: a dict filled by a decorator that refuses duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from doorwatch.rules.api import RuleContext
from doorwatch.rules.config import RuleOptions, Severity

SetupFunction = Callable[[RuleContext[Any]], None]
F = TypeVar("F", bound=Callable[..., None])


@dataclass(frozen=True, slots=True)
class RuleType:
    """A built-in rule type: its options model, its ``setup`` and its defaults."""

    name: str
    options: type[RuleOptions]
    setup: SetupFunction
    severity: Severity
    title: str
    # Door alarms a controller reports natively (forced, held) must not vanish because the
    # door is missing from the config: the first instance of the type takes unmapped doors
    # even when every instance filters by door or zone.
    catches_unmapped: bool = False


RULE_TYPES: dict[str, RuleType] = {}


def register(
    name: str,
    *,
    options: type[RuleOptions],
    severity: Severity,
    title: str,
    catches_unmapped: bool = False,
) -> Callable[[F], F]:
    """Register a rule type's ``setup`` function under ``name``; a second one is refused."""

    def decorate(setup: F) -> F:
        if name in RULE_TYPES:
            raise ValueError(
                f"rule type {name!r} is already registered by {RULE_TYPES[name].setup}"
            )
        RULE_TYPES[name] = RuleType(
            name=name,
            options=options,
            setup=setup,
            severity=severity,
            title=title,
            catches_unmapped=catches_unmapped,
        )
        return setup

    return decorate
