"""The built-in rule types, one module each; importing this package registers them all."""

from doorwatch.rules.builtin import (
    after_hours,
    camera_offline,
    camera_tamper,
    denied_burst,
    device_offline,
    duress,
    forced_open,
    held_open,
)

__all__ = [
    "after_hours",
    "camera_offline",
    "camera_tamper",
    "denied_burst",
    "device_offline",
    "duress",
    "forced_open",
    "held_open",
]
