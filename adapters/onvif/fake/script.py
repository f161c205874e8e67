"""Scripted events for fake cameras (``doorwatch simulate camera --events SCRIPT``).

Script file (YAML)::

    repeat: true                 # loop the steps until stopped
    steps:
      - {at: 2s, topic: "tns1:Device/Trigger/DigitalInput",
         source: {InputToken: AlarmIn_1}, data: {LogicalState: true}}
      - {at: 8s, topic: "tns1:Device/Trigger/DigitalInput",
         source: {InputToken: AlarmIn_1}, data: {LogicalState: false}}
      - {at: 10s, camera: 2, topic: "tns1:RuleEngine/TamperDetector/Tamper",
         source: {VideoSourceConfigurationToken: VideoSource_1}, data: {IsTamper: true}}
      - {at: 12s, topic: "tns1:AccessControl/Denied/Credential", operation: null,
         source: {AccessPointToken: AP_1}, data: {Reason: CredentialExpired}}

``camera`` is 1-based (default: every camera); ``operation`` is ``Changed`` (default),
``Initialized``, ``Deleted`` or null for a non-property event; ``count`` > 1 sends a storm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from doorwatch.adapters.onvif.fake.camera import FakeCamera, FakeEvent
from doorwatch.config.base import Duration
from doorwatch.errors import ConfigError


class Step(BaseModel):
    """One scripted event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(description="Seconds from the start of the script (or of each loop).")
    camera: int | None = Field(default=None, ge=1, description="1-based camera; default all.")
    topic: str = Field(min_length=1)
    source: dict[str, str] = Field(default_factory=dict)
    data: dict[str, str | bool | int | float] = Field(default_factory=dict)
    key: dict[str, str] = Field(default_factory=dict)
    operation: Literal["Initialized", "Changed", "Deleted"] | None = "Changed"
    count: int = Field(default=1, ge=1, le=100_000)

    def event(self) -> FakeEvent:
        """The fake event this step publishes."""
        return FakeEvent(
            topic=self.topic,
            source=dict(self.source),
            data=dict(self.data),
            key=dict(self.key),
            operation=self.operation,
        )


class Script(BaseModel):
    """Timed steps, optionally looping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repeat: bool = False
    steps: list[Step] = Field(min_length=1)


def load_script(path: Path) -> Script:
    """Read and validate a script file.

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid script.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the script ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML ({exc})") from None
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


async def play(script: Script, cameras: Sequence[FakeCamera]) -> None:
    """Publish the script's events on time, looping if asked, until cancelled."""
    steps = sorted(script.steps, key=lambda step: step.at)
    while True:
        started = time.monotonic()
        for step in steps:
            delay = started + step.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            targets = cameras if step.camera is None else cameras[step.camera - 1 : step.camera]
            for camera in targets:
                camera.emit(step.event(), count=step.count)
        if not script.repeat:
            return
        # The next loop starts one second after the last step, so a script whose steps are
        # all at 0s still cannot spin.
        await asyncio.sleep(1.0)
