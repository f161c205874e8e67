"""The exceptions doorwatch raises on purpose."""


class DoorwatchError(Exception):
    """Base of every error doorwatch raises deliberately."""


class ConfigError(DoorwatchError):
    """The configuration cannot be used; the message names file, key path and fix."""


class DecodeError(DoorwatchError):
    """An input message cannot be turned into canonical events.

    The message is one line an operator can read; the offending payload is kept in the
    dead-letter table, never in the message itself (it may hold card numbers).
    """

    def __init__(self, reason: str, *, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        # A short machine-friendly category used for metrics labels: malformed, too_large,
        # too_deep, wrong_type, unknown_topic, signature, unsupported.
        self.kind = kind


class AdapterNotReadyError(DoorwatchError):
    """An adapter could not finish setting up; the supervisor retries with backoff."""


class StorageError(DoorwatchError):
    """The database refused a write (locked, full, read-only)."""
