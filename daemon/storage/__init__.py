"""SQLite storage: one database file, one writer thread, migrations per component."""

from doorwatch.storage.db import Database, Migration

__all__ = ["Database", "Migration"]
