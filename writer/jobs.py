"""What both sides of the writer share: the job, the Writer interface, and the group commit.

With synchronous=FULL every commit waits for the disk. Jobs that arrive while a commit is in
flight queue up and share the next one (`commit_group`), so throughput grows with concurrency
while every caller is still answered only after *its* data is on disk. The writers that run it:
writer/parent.py (a child process, what serve uses) and writer/thread_writer.py (a thread).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from smsdesk.store.db import connect
from smsdesk.store.errors import StorageUnreachable

T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[sqlite3.Connection], Any]
log = logging.getLogger("smsdesk.writer")

@dataclass(frozen=True)
class ItemsJob:
    """One caller's items for a `run` that can take many callers' items in one call."""

    run: Callable[[sqlite3.Connection, list[Any]], list[Any]]
    items: list[Any]


class WriterStopped(StorageUnreachable):
    """The writer is stopped, or its answer was lost: the job may or may not be committed."""


class Writer(Protocol):
    """What `serve`'s parts need of a writer: `ProcessWriter` (writer/parent.py) or `GroupCommitWriter`
    (writer/thread_writer.py).

    A future's result means committed; the job's own exception means rolled back; WriterStopped
    means not known (maybe committed): retry, which every job serve submits tolerates.
    """

    def start(self) -> Writer: ...

    def wait_ready(self, timeout: float = 60.0) -> None: ...

    @property
    def alive(self) -> bool: ...

    @property
    def idle(self) -> bool:
        """Alive with no job in hand: nothing sent is waiting for a commit (writer/direct_commits.py)."""
        ...

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]: ...

    def submit_items(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]],
                     items: list[Any]) -> Future[list[R]]: ...

    async def run_items(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]],
                        items: list[Any]) -> list[R]: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class SubmitsItems:
    """`submit_items` on top of a writer's `submit`, shared by both writers."""

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]:
        raise NotImplementedError

    def submit_items(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]],
                     items: list[Any]) -> Future[list[R]]:
        """Like `submit`, for work that is one result per item (storing inbound messages).

        Callers queued together with the same `run` are served by one call over all their items:
        one set of statements for 64 single-message webhooks instead of 64 sets. Each caller gets
        back the results of its own items. If the shared call fails, each caller's items run
        again on their own, so a failure stays with the caller that caused it.
        """
        return self.submit(ItemsJob(run, list(items)))  # type: ignore[arg-type]

    async def run_items(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]],
                        items: list[Any]) -> list[R]:
        """`submit_items` for a caller on an event loop: its results, once committed."""
        return await asyncio.wrap_future(self.submit_items(run, items))


def job(func: Callable[..., T], *args: Any) -> Callable[[sqlite3.Connection], T]:
    """`func(conn, *args)` as a job. Unlike a lambda it pickles, when `func` is a module-level
    function and the arguments pickle, so a `ProcessWriter` can send it to its process."""
    return functools.partial(_call_with_connection, func, args)


def _call_with_connection(func: Callable[..., T], args: tuple[Any, ...], conn: sqlite3.Connection) -> T:
    return func(conn, *args)


def run_timed(conn: sqlite3.Connection, func: Callable[..., T], *args: Any) -> tuple[float, T]:
    """A writer job: `func(conn, *args)` and the seconds it ran in the writer (its group's commit
    not included). Measured where it runs: the time a job waits in the writer's queue is not
    its own (engine/sender_pacing.py paces the sender by this)."""
    started = time.perf_counter()
    result = func(conn, *args)
    return time.perf_counter() - started, result


def open_write_connection(db_path: Path | str, busy_timeout_ms: int) -> sqlite3.Connection:
    """The one write connection: migrated, WAL, synchronous=FULL (see store.db.connect)."""
    conn = connect(db_path).conn
    # Fail fast when another writer holds the lock, so the webhook can answer 503 and let
    # Infobip retry instead of holding its connection open.
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    # Index pages of random phone numbers scatter; a larger page cache keeps them in memory.
    conn.execute("PRAGMA cache_size = -65536")
    return conn


Outcome = tuple[bool, Any]  # (True, the job's value) or (False, the exception it raised)


def commit_group(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    """Run the jobs in one transaction, each in a savepoint of its own, and commit once.

    A job that raises is rolled back alone and gets its exception; if the commit itself fails
    (locked, disk full, I/O error) nobody's data is on disk and every job gets that error.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        results: list[Outcome] = []
        # Neighbouring item jobs with the same `run` share one call; any other job runs alone.
        for run, same in itertools.groupby(jobs, key=lambda job: job.run if isinstance(job, ItemsJob) else None):
            if run is None:
                results.extend(_run_job(conn, job) for job in same)
            else:
                results.extend(_run_items(conn, list(same)))  # type: ignore[arg-type]
        conn.execute("COMMIT")
    except Exception as exc:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # the connection may be unusable after an I/O error
                log.exception("rollback failed")
        log.warning("commit failed for %d job(s): %s", len(jobs), exc)
        return [(False, exc)] * len(jobs)
    return results


def _run_job(conn: sqlite3.Connection, job: Job) -> Outcome:
    conn.execute("SAVEPOINT job")
    try:
        value = job(conn)
    except Exception as exc:  # this job's own failure must not sink the others
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return False, exc
    conn.execute("RELEASE job")
    return True, value


def _run_items(conn: sqlite3.Connection, entries: list[ItemsJob]) -> list[Outcome]:
    if len(entries) == 1:
        entry = entries[0]
        return [_run_job(conn, lambda c: entry.run(c, entry.items))]
    run = entries[0].run
    ok, value = _run_job(conn, lambda c: run(c, [item for entry in entries for item in entry.items]))
    if not ok or len(value) != sum(len(entry.items) for entry in entries):
        # Find the culprit: each caller alone, in the same order, each in its own savepoint.
        return [_run_job(conn, lambda c, e=entry: e.run(c, e.items)) for entry in entries]
    split, start = [], 0
    for entry in entries:
        split.append((True, value[start:start + len(entry.items)]))
        start += len(entry.items)
    return split
