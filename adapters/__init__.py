"""Inputs: MQTT door controllers and ONVIF cameras, each mapped onto canonical events."""
