"""The TUI's one way to the database: a data service owned by the app.

Every read and write of the TUI goes through `DataService`, which runs it on a small pool of
threads (SQLite blocks; the UI thread never waits on it). Each pool thread keeps one reader
connection and, once it writes, one writer connection: nothing is shared between threads and no
connection is opened per call. Each read runs in one read transaction: the counts and rows a
view shows come from one snapshot ("31 of 27 match" cannot happen). One probe tells the app
whether what the views show changed: `PRAGMA data_version` on one connection says that someone
committed, and only then `store.queries.versions` says whether it was more than the receiver's
heartbeat. The app polls it on one timer and posts `DatabaseChanged` to the screens, which
re-read what they show, or `HeartbeatSeen` alone, which they re-read nothing for. Screens and
widgets hold the service and query functions from `store/`, never a database path, and the SQL
lives in `store/`.

Workers that call the service are started with `exit_on_error=False` (see `tui.workers`): a
failure (a credential deleted meanwhile, a database locked past the busy timeout) is reported
in the status line by the app's one handler, and the next tick retries, instead of ending the
TUI as a worker error does by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils
from textual.message import Message

from smsdesk.store.db import connect, connect_reader
from smsdesk.store.queries import Versions, versions

T = TypeVar("T")
P = ParamSpec("P")

POOL_THREADS = 2  # a slow read (a filter over a million rows) must not hold up a save


class DatabaseChanged(Message):
    """Another connection committed (or a retry is due after a failure): re-read what you show.

    `version` counts the changes the app has seen; a screen that was not shown when one was
    posted compares it with the last version it read when it comes back (ScreenResume)."""

    def __init__(self, version: int, *, retry: bool = False, clock: bool = False) -> None:
        super().__init__()
        self.version = version
        self.retry = retry  # posted because the last read failed, not because data moved
        self.clock = clock  # posted because time moved on (a minute passed), not the data


class HeartbeatSeen(Message):
    """The receiver's heartbeat moved and nothing a view shows did: `at` is its time (ISO UTC)."""

    def __init__(self, at: str | None) -> None:
        super().__init__()
        self.at = at


class DataService:
    """Reads and writes on pool threads; call from the UI thread (`read`, `write`, `probe`)."""

    def __init__(self, db_path: Path, *, busy_timeout: float | None = None, threads: int = POOL_THREADS) -> None:
        self._path = Path(db_path)
        self._busy_timeout = busy_timeout  # None: store.db's busy timeout (5 s)
        self._busy_timeout_ms = None if busy_timeout is None else int(busy_timeout * 1000)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smsdesk-db")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection | sqlite_utils.Database] = []
        self._opened_lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._probe_conn: sqlite3.Connection | None = None
        self._data_version = -1
        self._seen: Versions | None = None  # what the probe last found (probe thread)
        self.version = 0  # changes seen (UI thread only)
        self.heartbeat: str | None = None  # the receiver's last heartbeat the probe saw (UI thread only)
        self.heartbeat_moved = False  # the last probe saw the heartbeat move (UI thread only)
        self.failing = False  # the last call failed; the app retries on its timer
        self._closed = False

    @property
    def location(self) -> str:
        """For messages to the operator ("where is my data?"); never used to open anything."""
        return str(self._path)

    # ---- connections (pool threads) -----------------------------------------------------------
    def _tune(self, conn: sqlite3.Connection) -> None:
        if self._busy_timeout_ms is not None:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if conn is None:
            conn = connect_reader(self._path, timeout=self._busy_timeout)
            self._tune(conn)
            self._local.reader = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def _writer(self) -> sqlite_utils.Database:
        db: sqlite_utils.Database | None = getattr(self._local, "writer", None)
        if db is None:
            db = connect(self._path)
            self._tune(db.conn)
            self._local.writer = db
            with self._opened_lock:
                self._opened.append(db)
        return db

    def _run_read(self, query: Callable[..., T], args: tuple[Any, ...]) -> T:
        # One read transaction: every statement of the query sees the same commit, so a count
        # and the rows it counts, or a total and the part that matches, always agree.
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            result = query(conn, *args)
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the query's own failure is the one to report
                    conn.execute("ROLLBACK")
            raise
        if conn.in_transaction:
            conn.execute("COMMIT")
        return result

    def _run_write(self, change: Callable[..., T], args: tuple[Any, ...]) -> T:
        return change(self._writer(), *args)

    def _changed(self) -> tuple[bool, Versions | None]:
        """(what the views show changed, what was found): (False, None) when nobody committed."""
        with self._probe_lock:
            if self._probe_conn is None:
                self._probe_conn = connect_reader(self._path, timeout=self._busy_timeout)
                self._tune(self._probe_conn)
            version = int(self._probe_conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self._data_version:
                return False, None
            # Someone committed. Read after data_version: a commit in between is in what is read
            # now, and the next probe finds data_version moved again and nothing new: never lost.
            found = versions(self._probe_conn)
            # The first probe sets the baseline: the app takes it before any view reads
            # (SmsDeskApp.on_load), so what it finds is what the first reads show, not a change.
            changed = self._seen is not None and found.content != self._seen.content
            self._data_version = version
            self._seen = found
            return changed, found

    # ---- the API (UI thread) ------------------------------------------------------------------
    def submit_read(self, query: Callable[..., T], *args: Any) -> Future[T]:
        """`query(connection, *args)` on a pool thread; the future holds its result."""
        return self._pool.submit(self._run_read, query, args)

    async def read(self, query: Callable[..., T], *args: Any) -> T:
        """`query(sqlite3.Connection, *args)` (a function from store/) on a pool thread."""
        return await self._track(self.submit_read(query, *args))

    async def write(self, change: Callable[..., T], *args: Any) -> T:
        """`change(sqlite_utils.Database, *args)` (a store function that commits) on a pool thread."""
        return await self._track(self._pool.submit(self._run_write, change, args))

    def invalidate(self) -> None:
        """What every view shows is to be read again (a read failed): a new version, no probe."""
        self.version += 1

    async def probe(self) -> bool:
        """True when what the views show changed since the last probe (the first probe: False,
        it is the baseline: take it before the first read).

        A commit of the receiver's heartbeat alone is not a change: it sets `heartbeat` and
        `heartbeat_moved`, and the app tells the views without making them read."""
        self.heartbeat_moved = False
        changed, found = await self._track(self._pool.submit(self._changed))
        if found is not None and found.heartbeat != self.heartbeat:
            self.heartbeat = found.heartbeat
            self.heartbeat_moved = True
        if changed:
            self.version += 1
        return changed

    async def _track(self, future: Future[T]) -> T:
        try:
            result = await asyncio.wrap_future(future)
        except sqlite3.Error:
            self.failing = True
            raise
        self.failing = False
        return result

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._opened_lock:
            opened, self._opened = self._opened, []
        with self._probe_lock:
            if self._probe_conn is not None:
                opened.append(self._probe_conn)
                self._probe_conn = None
        # Closing a connection while a pool thread still runs a statement on it crashes the
        # interpreter (the statement's memory goes with it): stop what runs (interrupt is the one
        # call that is safe from another thread), wait for the threads, then close.
        for conn in opened:
            with contextlib.suppress(Exception):
                getattr(conn, "conn", conn).interrupt()  # a writer is a sqlite_utils Database
        self._pool.shutdown(wait=True, cancel_futures=True)
        for conn in opened:
            with contextlib.suppress(Exception):  # any complaint here changes nothing at exit
                conn.close()
