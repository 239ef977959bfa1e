"""Webhooks committed by serve itself, on a connection of its own, without the hop to the writer process.

Group commit through the writer process pays when many webhooks are in progress. With few there
is little to group, and the process only adds two hops (pickle, a socket, a process waking up,
and back): at one connection that made serve's latency twice the bare receiver's
(bench/ingest.py). So when few webhooks are in progress and the writer has nothing in hand
(engine/direct_commits.py decides), serve commits them with the writer's own job
(`store_inbound`), in one transaction with synchronous=FULL, before it answers: the same rows,
the same durability, the same answer.

It never waits and never decides a failure. Its busy timeout is 0: when anyone else holds the
write lock (the writer with a group of its own, a CLI command, the TUI) it declines at once.
Anything that goes wrong declines too, after a rollback. A declined webhook goes to the writer,
which waits for locks and answers every failure (503, a refused result) as it always has.
After a failure other than a busy lock the connection is closed and the committer stays off
for `pause` seconds: a broken disk costs a webhook one failed attempt at most once per pause.

Callers: one thread at a time (serve's event loop); `open` (off the loop) and `close` around that.
After storage trouble the new connection is opened on a thread of its own.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from smsdesk.store.errors import storage_trouble
from smsdesk.store.writer import open_write_connection

R = TypeVar("R")
log = logging.getLogger("smsdesk.direct")

# Errors that only mean "someone else is writing right now": decline, no pause.
_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")


class DirectCommitter:
    """Commits a job on the caller's thread, or declines (returns None) at once."""

    def __init__(self, db_path: Path | str, *, pause: float = 5.0) -> None:
        self._db_path = Path(db_path)
        self._pause = pause
        self._conn: sqlite3.Connection | None = None
        self._off_until = 0.0
        self._closed = False
        self._opening: threading.Thread | None = None
        self.committed = 0  # transactions committed here (for tests and operators)
        self.declined = 0  # attempts handed back to the writer

    def open(self) -> None:
        """Open the connection now (off the event loop), so that the first webhook does not pay
        for it. A database that cannot be opened leaves the committer off for a pause."""
        if self._conn is None and not self._closed:
            self._connect()

    def try_commit(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]], items: list[Any]) -> list[R] | None:
        """`run(conn, items)` committed, or None: nothing was written, give the items to the writer.

        `run` returns one result per item (as `store_inbound` does); one that does not is rolled
        back, so that nobody gets another's results (or none)."""
        conn = self._usable()
        if conn is None:
            self.declined += 1
            return None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        try:
            results = run(conn, items)
            if len(results) != len(items):
                raise RuntimeError(f"{len(results)} results for {len(items)} items")
            conn.execute("COMMIT")
        except Exception as exc:  # the job's own error too: the writer reproduces it and answers it
            self._rollback(conn)
            self._failed(exc)
            return None
        self.committed += 1
        return results

    def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _usable(self) -> sqlite3.Connection | None:
        if self._closed or time.monotonic() < self._off_until:
            return None
        if self._conn is None and (self._opening is None or not self._opening.is_alive()):
            # Opening touches the file system and migrates (it may wait for locks): never on the
            # caller's event loop. Declined meanwhile; a later webhook finds the connection open.
            self._opening = threading.Thread(target=self._connect, name="smsdesk-direct-open", daemon=True)
            self._opening.start()
        return self._conn

    def _connect(self) -> None:
        try:
            conn = open_write_connection(self._db_path, busy_timeout_ms=0)
        except Exception as exc:  # not only I/O: a file replaced by another program's fails its migration check
            log.warning("direct commits are off for %.0f s: the database could not be opened (%s)",
                        self._pause, exc.__class__.__name__)
            self._off_until = time.monotonic() + self._pause
            return
        if self._closed:  # closed while this opened
            conn.close()
            return
        self._conn = conn

    def _failed(self, exc: BaseException) -> None:
        self.declined += 1
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(_BUSY) or not storage_trouble(exc):
            return  # someone else is writing, or this job fails on its input: the writer answers it
        # A read-only or I/O error can stick to a connection (store/writer_process.py, _Reopening):
        # the next attempt, after the pause, opens a new one.
        log.warning("direct commits are off for %.0f s after %s; the writer takes the webhooks",
                    self._pause, name or exc.__class__.__name__)
        self._off_until = time.monotonic() + self._pause
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # unusable after an I/O error: _failed closes it
                conn.execute("ROLLBACK")

