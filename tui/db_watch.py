"""A cheap 'did another process commit?' probe for live views (PRAGMA data_version)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from store.db import connect


class ChangeWatcher:
    """Call `changed()` from worker threads; the first call always answers True."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._lock = threading.Lock()

    def changed(self) -> bool:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.db_path).conn
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self._version:
                return False
            self._version = version
            return True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
