"""Run `serve` in-process on a free loopback port for tests; writer jobs the writer process can import."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from smsdesk.engine.receiver import BasicAuth
from smsdesk.engine.service import ServeConfig, ServerThread
from smsdesk.infobip.net import wait_until  # noqa: F401  (re-exported for the tests)
from smsdesk.store.errors import DuplicateError
from smsdesk.writer.jobs import job

WEBHOOK_USER = "infobip"
WEBHOOK_PASSWORD = "correct-horse-battery"


@contextmanager
def running_serve(db_path: Path, **overrides: object) -> Iterator[ServerThread]:
    options: dict[str, object] = dict(db_path=db_path, host="127.0.0.1", port=0,
                                      auth=BasicAuth(WEBHOOK_USER, WEBHOOK_PASSWORD), run_outbox=False,
                                      run_poller=False, outbox_interval=0.05, poll_interval=0.2)
    options.update(overrides)
    with ServerThread(ServeConfig(**options)) as server:  # type: ignore[arg-type]
        yield server


def page_limit(pages: int) -> Callable[[sqlite3.Connection, list[Any]], list[Any]]:
    """A job for a direct committer (writer/direct_commits.py): its connection may grow the file to
    `pages` pages at most (what a full disk does to every connection, for one connection)."""
    def run(conn: sqlite3.Connection, items: list[Any]) -> list[Any]:
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return []
    return run


def writer_disk_full(server: ServerThread, full: bool = True) -> None:
    """The writer's connection may not grow the file (full) or may again: a full disk for the
    writer alone (SQLite's page limit fails the next growth with SQLITE_FULL, as a disk does)."""
    writer = server.service.writer
    pages = writer.submit(job(first_value, "PRAGMA page_count")).result(5) if full else 1073741823
    writer.submit(job(first_value, f"PRAGMA max_page_count = {pages}")).result(5)


def first_value(conn: sqlite3.Connection, sql: str) -> object:
    """A writer job (importable, so the writer process can run it): one statement's first value."""
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


# Writer jobs for tests/system/test_writer_process.py: module-level, so they pickle by name and the
# writer process imports them from here.


def writer_pid(conn: sqlite3.Connection) -> int:
    """A writer job: the id of the process that runs it."""
    return os.getpid()


def insert_key(conn: sqlite3.Connection, key: str) -> int:
    """A writer job: one row in a table of its own; the same key twice raises IntegrityError."""
    conn.execute("CREATE TABLE IF NOT EXISTS writer_probe (key TEXT PRIMARY KEY, pid INTEGER NOT NULL)")
    return conn.execute("INSERT INTO writer_probe (key, pid) VALUES (?, ?)", (key, os.getpid())).lastrowid or 0


def durability(conn: sqlite3.Connection) -> tuple[str, int]:
    """A writer job: the connection's journal mode and synchronous level (2: FULL)."""
    return conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0]


def hold_writer(conn: sqlite3.Connection, seconds: float) -> float:
    """A writer job that keeps the writer busy, so that the jobs sent meanwhile queue up."""
    time.sleep(seconds)
    return seconds


def held_items(conn: sqlite3.Connection, items: list[float]) -> list[float]:
    """A writer job taking items (for `run_items`): keeps the writer busy for the first item's seconds."""
    time.sleep(items[0])
    return items


def unpicklable_result(conn: sqlite3.Connection) -> object:
    """A writer job whose value cannot be sent back to the parent."""
    return threading.Lock()


def raise_duplicate_error(conn: sqlite3.Connection) -> None:
    """A writer job raising an exception that pickles but cannot be rebuilt from its args."""
    raise DuplicateError("name", "already taken")


def store_inbound_unless(flag: str, conn: sqlite3.Connection, rows: list[tuple],
                         unreadable: list | tuple = ()) -> list[tuple]:
    """`store_inbound` as a writer job that raises a non-storage exception (a bug) while the
    file `flag` exists: with `functools.partial` it pickles, so the writer process runs it too."""
    if os.path.exists(flag):
        raise RuntimeError("a bug in the job")
    from smsdesk.store.inbound import store_inbound

    return store_inbound(conn, rows, unreadable)


def apply_delivery_reports_unless(flag: str, conn: sqlite3.Connection, reports: list[tuple]) -> int:
    """`apply_delivery_reports`, raising a non-storage exception while the file `flag` exists."""
    if os.path.exists(flag):
        raise KeyError("a bug in the job")
    from smsdesk.store.outbox import apply_delivery_reports

    return apply_delivery_reports(conn, reports)


def store_inbound_refusing(conn: sqlite3.Connection, rows: list, unreadable: list | tuple = ()) -> list:
    """A writer job for the receiver: the real store_inbound, except that any call with a row whose
    text is "POISON" fails as a bug on one result would (fault injection; the rows it does store are real)."""
    from smsdesk.store.inbound import store_inbound

    if any(row[3] == "POISON" for row in rows):
        raise ValueError("this result cannot be stored")
    return store_inbound(conn, rows, unreadable)
