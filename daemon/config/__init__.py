"""The configuration: models, the YAML loader with precise errors, and secret files.

``Config`` and ``load_config`` are imported lazily: plug-in modules (codecs, rules, cameras)
import ``doorwatch.config.base`` for their option models, and the models module imports them
back to build the unions; an eager import here would make that a cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doorwatch.config.loader import load_config
    from doorwatch.config.models import Config

__all__ = ["Config", "load_config"]

_LAZY = {"Config": "doorwatch.config.models", "load_config": "doorwatch.config.loader"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
