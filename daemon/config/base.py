"""Building blocks shared by every config model: the strict base, durations, ids, paths."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo


class Model(BaseModel):
    """Base of every config model: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
DURATION_HINT = "write a number of seconds or a string like 30s, 5m, 1h, 2d"


def _parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("not a duration (a boolean)")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("not a duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


# Durations are carried as float seconds: every timer in doorwatch runs on a monotonic clock
# that counts seconds, so there is no point converting back and forth to timedelta.
Duration = Annotated[float, BeforeValidator(_parse_duration)]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            "ids are 1-64 letters, digits, '-', '_', '.' or ':' and start with a letter or digit"
        )
    return value


Identifier = Annotated[str, AfterValidator(_check_id)]


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("not an IANA time zone such as America/Chicago or Europe/Paris") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_zone)]

CREDENTIALS_VARIABLE = "CREDENTIALS_DIRECTORY"


def _resolve_path(value: str | Path, info: ValidationInfo) -> Path:
    """Resolve ``$CREDENTIALS_DIRECTORY``, ``~`` and paths relative to the config file."""
    text = str(value)
    credentials = os.environ.get(CREDENTIALS_VARIABLE)
    for spelling in ("${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY", "%d"):
        if spelling in text and credentials:
            text = text.replace(spelling, credentials)
    path = Path(text).expanduser()
    base = (info.context or {}).get("base_dir") if info.context else None
    if not path.is_absolute() and base is not None and not text.startswith("$"):
        path = Path(base) / path
    return path


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]

Seconds = Annotated[Duration, Field(ge=0)]
