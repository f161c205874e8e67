"""Config model of one ONVIF camera."""

from __future__ import annotations

from doorwatch.config.base import ConfigPath, Duration, Identifier, Model
from pydantic import Field


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
