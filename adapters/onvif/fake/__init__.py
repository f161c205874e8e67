"""Fake ONVIF cameras for tests, the demo and ``doorwatch simulate camera``."""

from doorwatch.adapters.onvif.fake.camera import FakeCamera, FakeEvent, Faults, snapshot_jpeg
from doorwatch.adapters.onvif.fake.server import FakeCameraServer, make_cameras

__all__ = ["FakeCamera", "FakeCameraServer", "FakeEvent", "Faults", "make_cameras", "snapshot_jpeg"]
