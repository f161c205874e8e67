"""The configuration: models, the YAML loader with precise errors, and secret files."""

from doorwatch.config.loader import load_config
from doorwatch.config.models import Config

__all__ = ["Config", "load_config"]
