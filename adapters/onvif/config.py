"""Config model of one ONVIF camera."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from doorwatch.config.base import ConfigPath, Duration, Identifier, Model


class CameraConfig(Model):
    """One ONVIF camera: where it is, how to log in, which of its inputs are doors."""

    id: Identifier
    name: str | None = None
    host: str = Field(min_length=1, description="Camera hostname or IP address.")
    port: int = Field(default=80, ge=1, le=65535)
    username: str | None = None
    password_file: ConfigPath | None = Field(
        default=None, description="File holding the camera password (or $CREDENTIALS_DIRECTORY/x)."
    )
    inputs: dict[str, Identifier] = Field(
        default_factory=dict,
        description="Camera input token (AlarmIn_1, a DoorToken) -> site door id.",
    )
    snapshot: bool = Field(default=True, description="Attach a snapshot to alerts.")
    pull_timeout: Duration = Field(default=60.0, description="PullMessages long-poll timeout.")
    door_open_when: Literal["active", "inactive"] = Field(
        default="active",
        description="For inputs listed in inputs: which input state means the door is open. "
        "'active' when the camera's input is set up to be active on alarm (usual); 'inactive' "
        "for an unconfigured input on a normally-closed contact (true = circuit closed).",
    )
    subscription_time: Duration = Field(
        default=600.0,
        gt=0,
        description="Pull-point subscription window; renewed at 80 %. Short windows keep a "
        "camera's subscription slots free after a crash of ours.",
    )
    request_timeout: Duration = Field(
        default=10.0, gt=0, description="Time allowed for each ONVIF call other than the pull."
    )
    pull_cooldown: Duration = Field(
        default=1.0,
        ge=0,
        description="Minimum time between pulls that did not return a full batch, so a camera "
        "that answers at once instead of long-polling cannot make us busy-loop.",
    )
    retry_initial: Duration = Field(
        default=5.0, gt=0, description="First wait after a network error; doubles, jittered."
    )
    retry_max: Duration = Field(
        default=300.0, gt=0, description="Longest wait between attempts after network errors."
    )
    auth_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Authentication failures in a row before backing off for auth_retry_after "
        "(cameras lock accounts after a few wrong logins).",
    )
    auth_retry_after: Duration = Field(
        default=900.0, gt=0, description="Wait after auth_attempts authentication failures."
    )
    max_clock_skew: Duration = Field(
        default=5.0,
        ge=0,
        description="Camera clock difference beyond which it is reported and its event "
        "times are not used as device_time.",
    )
    snapshot_profile: str | None = Field(
        default=None, description="Media profile token for snapshots (default: the first one)."
    )
    snapshot_timeout: Duration = Field(
        default=5.0, gt=0, description="Time allowed to fetch one snapshot, discovery included."
    )
    snapshot_max_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Larger snapshots are refused."
    )
