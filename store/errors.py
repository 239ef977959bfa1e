"""Errors the store raises; each carries a message fit to show a user as is."""

from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """Base class: a user-facing problem with stored data."""


class NotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    """Optimistic concurrency: the row changed since it was read."""


class DuplicateError(StoreError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def storage_trouble(exc: BaseException) -> bool:
    """The file or the disk failed (I/O, locked, read-only, full, corrupt, not a database), as
    opposed to a job that failed on its input: retry later, and do not blame the data."""
    return isinstance(exc, OSError | sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError
