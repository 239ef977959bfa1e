"""The migrations are applied in the order of the tuple (store/db.py: apply_migrations): a version
placed after a higher one would be skipped on every database already past it."""

from __future__ import annotations

from smsdesk.store.schema import LATEST_VERSION, MIGRATIONS


def test_migrations_are_numbered_one_to_latest_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
