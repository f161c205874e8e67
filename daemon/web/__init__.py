"""The HTTP side of the daemon: health, metrics, the JSON API and the console."""
