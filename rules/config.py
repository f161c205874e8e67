"""Config models of rule instances: one per built-in rule type, plus custom rule modules."""

from __future__ import annotations

import enum
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from doorwatch.config.base import Duration, Identifier, Model


class Severity(enum.StrEnum):
    """Alert severity, ordered from least to most urgent."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order info < low < medium < high < critical."""
        return list(Severity).index(self)


# The names a title template may use; each is filled from the alert's door, camera and event,
# and is empty when the alert has none (a device alert has no door).
TITLE_FIELDS = frozenset(
    {"door_name", "door", "zone", "camera", "holder", "device", "source", "rule", "credential"}
)


def _check_title(template: str | None) -> str | None:
    if template is None:
        return None
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"not a title template ({exc}); write e.g. 'Propped: {{door_name}}'"
        ) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TITLE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; use "
                + ", ".join(f"{{{f}}}" for f in sorted(TITLE_FIELDS))
            )
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
    return template


class RuleOptions(Model):
    """Settings every rule instance has."""

    id: Identifier | None = Field(
        default=None,
        description="Instance id; defaults to the type (type-2, ... for repeats), or to the "
        "module's name for a custom rule.",
    )
    enabled: bool = True
    severity: Severity | None = Field(default=None, description="Overrides the rule's default.")
    title: Annotated[str | None, AfterValidator(_check_title)] = Field(
        default=None,
        description="Title template; {door_name}, {door}, {zone}, {camera}, {holder}, {device}, "
        "{source}, {rule}, {credential}.",
    )
    audiences: list[Identifier] | None = Field(
        default=None, description="Who is told; defaults to the routing in notify."
    )
    doors: list[Identifier] | None = Field(default=None, description="Only these doors.")
    zones: list[str] | None = Field(default=None, description="Only doors in these zones.")


class DoorHeldOpenOptions(RuleOptions):
    """A door stays open past its threshold; optional pre-alarm; resolves when it closes."""

    type: Literal["door_held_open"]
    held_open_after: Duration = Field(
        default=30.0, description="Default threshold for doors that set none."
    )
    prealarm_after: Duration | None = Field(
        default=None, description="Default pre-alarm for doors that set none."
    )
    prealarm_severity: Severity = Severity.LOW

    @model_validator(mode="after")
    def _prealarm_before_alarm(self) -> DoorHeldOpenOptions:
        if self.prealarm_after is not None and self.prealarm_after >= self.held_open_after:
            raise ValueError("prealarm_after must be shorter than held_open_after")
        return self


class DoorForcedOpenOptions(RuleOptions):
    """A door opens with no grant or exit request within the shunt, or reports forced."""

    type: Literal["door_forced_open"]
    # Ten seconds covers a grant-to-push delay at a normal pace without masking a real forcing.
    shunt: Duration = Field(default=10.0, description="Grant/REX window that explains an opening.")


class AfterHoursAccessOptions(RuleOptions):
    """Access outside a schedule's open windows, holidays included, in the site's zone.

    Judged by the local wall time of ``received_at`` in ``site.timezone``.
    """

    type: Literal["after_hours_access"]
    schedule: Identifier = Field(description="Name of a schedule in `schedules`.")
    include_denied: bool = Field(default=False, description="Also alert on denied attempts.")


class AccessDeniedBurstOptions(RuleOptions):
    """Many denials in a short window at one door or for one credential."""

    type: Literal["access_denied_burst"]
    count: int = Field(default=5, ge=2, description="Denials that make a burst.")
    window: Duration = Field(default=60.0, description="Sliding window the denials fall in.")
    per: Literal["door", "credential"] = "door"


class DuressOptions(RuleOptions):
    """A duress code was used."""

    type: Literal["duress"]


class DeviceOfflineOptions(RuleOptions):
    """A controller reports offline (its adapter also reports silence past a heartbeat)."""

    type: Literal["device_offline"]
    devices: list[str] | None = Field(default=None, description="Only these devices/sources.")


class CameraTamperOptions(RuleOptions):
    """A camera reports tampering, scene change or signal loss."""

    type: Literal["camera_tamper"]
    cameras: list[Identifier] | None = None


class CameraOfflineOptions(RuleOptions):
    """A camera stops answering."""

    type: Literal["camera_offline"]
    cameras: list[Identifier] | None = None


def is_module_path(spec: str) -> bool:
    """Whether a custom rule's ``module`` names a file rather than a dotted module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


class CustomRuleOptions(RuleOptions):
    """A rule written in Python against doorwatch.rules.api."""

    type: Literal["custom"] = "custom"
    module: str = Field(
        min_length=1,
        description="A .py file (relative to the config file) or a dotted module name.",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the rule.")

    @field_validator("module")
    @classmethod
    def _resolve_path(cls, module: str, info: ValidationInfo) -> str:
        """Make a relative file path relative to the config file, like every other path."""
        if not is_module_path(module):
            return module
        path = Path(module).expanduser()
        base = (info.context or {}).get("base_dir") if info.context else None
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        return str(path)


BUILTIN_RULE_TYPES = (
    "door_held_open",
    "door_forced_open",
    "after_hours_access",
    "access_denied_burst",
    "duress",
    "device_offline",
    "camera_tamper",
    "camera_offline",
)


def _rule_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "type" in value:
            return str(value["type"])
        return "custom" if "module" in value else None
    return getattr(value, "type", None)


def rule_ids(rules: list[Any]) -> list[str]:
    """The id of each rule instance: its own, else its type (``type-2`` ... for repeats).

    A custom rule without an id is named after its module (``tailgating`` for
    ``rules.d/tailgating.py``). Generated ids skip ids given explicitly.
    """
    taken = {r.id for r in rules if r.id is not None}
    ids: list[str] = []
    for rule in rules:
        if rule.id is not None:
            ids.append(rule.id)
            continue
        base = rule.type
        if isinstance(rule, CustomRuleOptions):
            base = Path(rule.module).stem if is_module_path(rule.module) else rule.module
            base = base.rsplit(".", 1)[-1]
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}-{number}"
        taken.add(candidate)
        ids.append(candidate)
    return ids


RuleConfig = Annotated[
    Annotated[DoorHeldOpenOptions, Tag("door_held_open")]
    | Annotated[DoorForcedOpenOptions, Tag("door_forced_open")]
    | Annotated[AfterHoursAccessOptions, Tag("after_hours_access")]
    | Annotated[AccessDeniedBurstOptions, Tag("access_denied_burst")]
    | Annotated[DuressOptions, Tag("duress")]
    | Annotated[DeviceOfflineOptions, Tag("device_offline")]
    | Annotated[CameraTamperOptions, Tag("camera_tamper")]
    | Annotated[CameraOfflineOptions, Tag("camera_offline")]
    | Annotated[CustomRuleOptions, Tag("custom")],
    Discriminator(
        _rule_tag,
        custom_error_type="rule_type",
        custom_error_message="unknown rule type; use one of "
        + ", ".join(BUILTIN_RULE_TYPES)
        + ", or {module: ...} for a custom rule",
    ),
]
