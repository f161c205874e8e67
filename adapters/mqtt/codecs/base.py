"""What every controller codec is: its options model, its decode method and its registry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from pydantic import Field, field_validator

from doorwatch.config.base import Duration, Identifier, Model
from doorwatch.errors import DecodeError
from doorwatch.events import Event


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One MQTT message as the codec sees it."""

    topic: str
    payload: bytes
    # Retained (sent because of a new subscription) or otherwise known to be old: state replay.
    retained: bool
    received_at: datetime


_WILDCARDS_OK = re.compile(r"^(?:[^#+]*|\+)(?:/(?:[^#+]*|\+))*(?:/#)?$|^#$")


class ControllerOptions(Model):
    """Settings every controller (MQTT adapter instance) has, whatever its codec."""

    id: Identifier = Field(description="The controller's id; events carry it as `source`.")
    codec: str = Field(description="Which payload format this controller publishes.")
    topics: list[str] = Field(
        min_length=1, description="MQTT topic filters to subscribe to (wildcards allowed)."
    )
    doors: dict[str, Identifier] = Field(
        default_factory=dict,
        description="Source door reference -> site door id.",
    )
    heartbeat_timeout: Duration | None = Field(
        default=None,
        description="Report the device offline after this much silence (None: never).",
    )

    @field_validator("topics")
    @classmethod
    def _topics_are_filters(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            if not topic or not _WILDCARDS_OK.match(topic) or "\x00" in topic:
                raise ValueError(
                    f"{topic!r} is not an MQTT topic filter ('+' must fill a whole level, "
                    "'#' only as the last level)"
                )
        return topics


OptionsT = TypeVar("OptionsT", bound=ControllerOptions)


class Codec(Generic[OptionsT]):
    """Turns one controller format's MQTT messages into canonical events.

    A codec instance belongs to one controller and may keep state across messages (the last
    contact value of a sensor, the last event id of a controller). ``decode`` never raises
    anything but :class:`DecodeError`.
    """

    name: ClassVar[str]

    def __init__(self, options: OptionsT) -> None:
        self.options = options

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the events in one message, or raise :class:`DecodeError`."""
        raise NotImplementedError


CODECS: dict[str, type[Codec[Any]]] = {}


def register_codec(name: str) -> Any:
    """Register a codec class under ``name``; a second codec with the same name is refused."""

    def register(cls: type[Codec[Any]]) -> type[Codec[Any]]:
        if name in CODECS:
            raise ValueError(f"codec {name!r} is already registered by {CODECS[name].__name__}")
        cls.name = name
        CODECS[name] = cls
        return cls

    return register


# Payloads above this are refused before parsing. Door events are a few hundred bytes; a
# megabyte is a misbehaving publisher, and parsing it would stall every other door.
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024


def load_json(payload: bytes) -> Any:
    """Parse a JSON payload, turning every failure into a one-line :class:`DecodeError`."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "recursion" in text.lower() or "depth" in text.lower():
            raise DecodeError("JSON nested too deeply", kind="too_deep") from None
        raise DecodeError(f"not JSON: {text.splitlines()[0][:120]}", kind="malformed") from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply", kind="too_deep") from None


def json_object(payload: bytes) -> dict[str, Any]:
    """Parse a payload that must be a JSON object."""
    data = load_json(payload)
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}", kind="wrong_type")
    return data
