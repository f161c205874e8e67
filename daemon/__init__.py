"""doorwatch: joins door controllers and ONVIF cameras into alerts for school safety teams."""

__version__ = "0.1.0"
__all__ = ["__version__"]
