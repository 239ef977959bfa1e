"""A cheap 'did another process commit?' probe for live views (PRAGMA data_version)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from smsdesk.store.db import connect_reader

T = TypeVar("T")


class ChangeWatcher:
    """Call `changed()` and `read()` from worker threads; the first `changed()` answers True.

    One long-lived connection, opened on first use: a view that polls and re-reads does not pay
    for a new connection (a dozen statements, each a GIL hand-off) every time.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_reader(self.db_path)
        return self._conn

    def _note_version(self) -> bool:
        version = int(self._connection().execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return False
        self._version = version
        return True

    def changed(self) -> bool:
        with self._lock:
            return self._note_version()

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query` (reads only) on this connection, noting the data version first.

        A commit made after the note is seen by the next `changed()`, and `changed()` does not
        report again what this read already returned. (data_version only moves for commits of
        other connections, so reading here never moves it.)
        """
        with self._lock:
            self._note_version()
            return query(self._connection())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
