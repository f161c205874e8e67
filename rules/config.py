"""Config models of rule instances: one per built-in rule type, plus custom rule modules."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from doorwatch.config.base import Duration, Identifier, Model
from pydantic import Discriminator, Field, Tag


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


class RuleOptions(Model):
    """Settings every rule instance has."""

    id: Identifier | None = Field(
        default=None, description="Instance id; defaults to the type (type-2, ... for repeats)."
    )
    enabled: bool = True
    severity: Severity | None = Field(default=None, description="Overrides the rule's default.")
    title: str | None = Field(
        default=None,
        description="Title template; {door_name}, {door}, {zone}, {camera}, {holder}, {device}.",
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


class DoorForcedOpenOptions(RuleOptions):
    """A door opens with no grant or exit request within the shunt, or reports forced."""

    type: Literal["door_forced_open"]
    # Ten seconds covers a grant-to-push delay at a normal pace without masking a real forcing.
    shunt: Duration = Field(default=10.0, description="Grant/REX window that explains an opening.")


class AfterHoursAccessOptions(RuleOptions):
    """Access outside a schedule's open windows, holidays included, in the site's zone."""

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
    """A controller reports offline, or is silent past its heartbeat timeout."""

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


class CustomRuleOptions(RuleOptions):
    """A rule written in Python against doorwatch.rules.api."""

    type: Literal["custom"] = "custom"
    module: str = Field(description="A .py file path or a dotted module name.")
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the rule.")


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
