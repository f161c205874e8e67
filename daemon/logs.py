"""structlog set-up: key-value logs on stderr, JSON for journald, secrets never printed."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from doorwatch.events import mask_credential

# Keys whose values must never reach a log line, whatever a caller passes by mistake.
_SECRET_KEY = re.compile(
    r"(^|_)(pass(word|wd)?|secret|token|api_?key|authorization|cookie|csrf"
    r"|session_?(id|token|key))($|_)",
    re.IGNORECASE,
)
_CARD_KEY = re.compile(r"^(card(_number)?|card-number|uid|pin|credential)$", re.IGNORECASE)
# A bare run of 6+ digits inside free text is treated as a possible card number.
_LONG_DIGITS = re.compile(r"\b\d{6,}\b")


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, "", False):
        return "[redacted]"
    if _CARD_KEY.match(key) and value is not None:
        return mask_credential(value)
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop secrets and mask card numbers in every log event."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog once for the process."""
    renderer: Any
    if fmt == "console" or (fmt == "auto" and sys.stderr.isatty()):
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        # Look stderr up at each use: tests and tools swap it, and a logger holding a closed
        # stream would fail every later line.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def mask_digits(text: str) -> str:
    """Mask long digit runs (possible card numbers) in free text such as a device's message."""
    return _LONG_DIGITS.sub(lambda m: "****" + m.group(0)[-4:], text)
