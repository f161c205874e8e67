"""The ``generic`` codec: the canonical event itself, as a JSON object.

Any publisher that can build JSON can feed doorwatch without a custom codec. Fields are the
canonical ones (see the README); only ``kind`` is required. ``source`` and ``received_at`` are
accepted and ignored: the source is the controller's id and the time is doorwatch's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from doorwatch.adapters.mqtt.codecs.base import (
    Codec,
    ControllerOptions,
    InboundMessage,
    json_object,
    register_codec,
)
from doorwatch.errors import DecodeError
from doorwatch.events import Direction, Event, EventKind, content_key, mask_credential, parse_iso


class GenericOptions(ControllerOptions):
    """A controller that publishes canonical events as JSON."""

    codec: Literal["generic"]


class _GenericPayload(BaseModel):
    """The accepted shape of a generic payload; unknown fields are refused, not guessed."""

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    source: StrictStr | None = None
    device: StrictStr | None = None
    door: StrictStr | None = None
    door_ref: StrictStr | None = None
    camera: StrictStr | None = None
    # Card numbers arrive as numbers from some publishers; they are masked either way.
    credential: StrictStr | StrictInt | None = None
    holder: StrictStr | None = None
    direction: Direction | None = None
    reason: StrictStr | StrictInt | None = None
    device_time: StrictStr | None = None
    received_at: StrictStr | None = None
    replayed: StrictBool = False
    dedupe_key: StrictStr | None = None


_MAX_TEXT = 256


@register_codec("generic")
class GenericCodec(Codec[GenericOptions]):
    """Decodes canonical events sent as JSON objects."""

    def decode(self, message: InboundMessage) -> list[Event]:
        """Return the one event in the payload."""
        data = json_object(message.payload)
        try:
            body = _GenericPayload.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "payload"
            raise DecodeError(f"field {where}: {first['msg']}", kind="wrong_type") from None
        for name in ("device", "door", "door_ref", "camera", "holder", "reason", "dedupe_key"):
            value = getattr(body, name)
            if isinstance(value, str) and len(value) > _MAX_TEXT:
                raise DecodeError(f"field {name} longer than {_MAX_TEXT} characters")
        device_time: datetime | None = None
        if body.device_time:
            try:
                device_time = parse_iso(body.device_time)
            except ValueError:
                raise DecodeError("field device_time is not ISO-8601", kind="wrong_type") from None
        source = self.options.id
        door_ref = body.door_ref or body.door
        # Without a dedupe key, identical payloads are the same event: publishers that repeat
        # an identical event must add device_time or a dedupe_key to tell the repeats apart.
        dedupe_key = body.dedupe_key or content_key(
            f"generic:{source}", message.topic, message.payload
        )
        return [
            Event(
                kind=body.kind,
                source=source,
                device=body.device,
                door=door_ref,
                door_ref=door_ref,
                camera=body.camera,
                credential=mask_credential(body.credential),
                holder=body.holder,
                direction=body.direction,
                reason=None if body.reason is None else str(body.reason),
                device_time=device_time,
                received_at=message.received_at,
                replayed=message.retained or body.replayed,
                dedupe_key=dedupe_key,
            )
        ]
