"""ONVIF cameras: pull-point events, snapshots and camera health."""
