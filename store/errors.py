"""Errors the store raises; each carries a message fit to show a user as is."""

from __future__ import annotations


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
