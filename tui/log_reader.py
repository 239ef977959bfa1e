"""Queries behind the live message log, run on worker threads (never the UI thread).

The view addresses rows by position (0 = newest). A page next to a row already on hand is
fetched by keyset (id < that row's id), which costs the same at row 10 and row 900,000; only a
jump into the unknown (End, a scrollbar drag) falls back to OFFSET.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from smsdesk.store.db import connect
from smsdesk.store.queries import MessageFilter, MessageRow, messages_by_id, page_messages


class LogReader:
    """One read connection, serialised by a lock, so any worker thread may call it."""

    def __init__(self, db_path: Path) -> None:
        self._conn: sqlite3.Connection = connect(db_path).conn
        self._lock = threading.Lock()
        self._data_version = -1

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def count_and_top(self, filters: MessageFilter) -> tuple[int, int]:
        clauses, params = filters.where()
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            self._data_version = _data_version(self._conn)
            count, top = self._conn.execute(
                f"SELECT COUNT(*), COALESCE(MAX(m.id), 0) FROM messages m {where}", params).fetchone()
        return int(count), int(top)

    def changed(self) -> bool:
        """True when another connection committed since the last call: the cheap idle probe."""
        with self._lock:
            version = _data_version(self._conn)
            if version == self._data_version:
                return False
            self._data_version = version
            return True

    def newer(self, filters: MessageFilter, after_id: int, limit: int) -> list[MessageRow]:
        with self._lock:
            return page_messages(self._conn, after_id=after_id, limit=limit, filters=filters)

    def before(self, filters: MessageFilter, before_id: int | None, limit: int) -> list[MessageRow]:
        with self._lock:
            return page_messages(self._conn, before_id=before_id, limit=limit, filters=filters)

    def at_offset(self, filters: MessageFilter, offset: int, limit: int) -> list[MessageRow]:
        clauses, params = filters.where()
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            first = self._conn.execute(
                f"SELECT m.id FROM messages m {where} ORDER BY m.id DESC LIMIT 1 OFFSET ?", (*params, offset)
            ).fetchone()
            if first is None:
                return []
            return page_messages(self._conn, before_id=first[0] + 1, limit=limit, filters=filters)

    def rows_by_id(self, ids: list[int]) -> dict[int, MessageRow]:
        """Re-read rows whose reply status may have moved on (queued -> sent -> delivered)."""
        with self._lock:
            return messages_by_id(self._conn, ids)


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
