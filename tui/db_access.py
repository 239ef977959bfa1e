"""Opening the database from TUI worker threads.

Each worker opens its own short-lived connection: `store.db.connect` is cheap (a few PRAGMAs
and a lock-free schema check) and a private connection means no cross-thread sharing and no
lock contention between a slow list and a save.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from smsdesk.store.credentials import get_credential_by_id
from smsdesk.store.db import connect
from smsdesk.store.models import StoredCredential


@contextmanager
def open_db(path: Path) -> Iterator[sqlite_utils.Database]:
    db = connect(path)
    try:
        yield db
    finally:
        db.close()


def load_credential(path: Path, credential_id: int) -> StoredCredential:
    """The full credential behind a list row (call from a thread worker).

    Raises store.errors.NotFoundError when someone deleted it since the list was read.
    """
    with open_db(path) as db:
        return get_credential_by_id(db, credential_id)
