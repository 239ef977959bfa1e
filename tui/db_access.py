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

from store.db import connect


@contextmanager
def open_db(path: Path) -> Iterator[sqlite_utils.Database]:
    db = connect(path)
    try:
        yield db
    finally:
        db.close()
