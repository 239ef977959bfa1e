"""Group commit: one writer thread turns many concurrent write jobs into few durable commits.

With synchronous=FULL every commit waits for the disk. Requests that arrive while a commit is in
flight queue up and share the next one, so throughput grows with concurrency while every caller
is still answered only after *its* data is on disk.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from smsdesk.store.db import connect

T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[sqlite3.Connection], Any]
log = logging.getLogger("smsdesk.writer")

_STOP = object()


@dataclass(frozen=True)
class _Items:
    """One caller's items for a `run` that can take many callers' items in one call."""

    run: Callable[[sqlite3.Connection, list[Any]], list[Any]]
    items: list[Any]


class WriterStopped(RuntimeError):
    pass


class Writer(Protocol):
    """What `serve`'s parts need of a writer: `GroupCommitWriter` here, `ProcessWriter` in a child.

    A future's result means committed; the job's own exception means rolled back; WriterStopped
    means not known (maybe committed): retry, which every job serve submits tolerates.
    """

    def start(self) -> Writer: ...

    def wait_ready(self, timeout: float = 60.0) -> None: ...

    @property
    def alive(self) -> bool: ...

    @property
    def idle(self) -> bool:
        """Alive with no job in hand: nothing sent is waiting for a commit (store/direct_commit.py)."""
        ...

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]: ...

    def submit_items(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]],
                     items: list[Any]) -> Future[list[R]]: ...

    async def run_items(self, run: Callable[[sqlite3.Connection, list[Any]], list[R]],
                        items: list[Any]) -> list[R]: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class _SubmitsItems:
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
        return self.submit(_Items(run, list(items)))  # type: ignore[arg-type]

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
        for run, same in itertools.groupby(jobs, key=lambda job: job.run if isinstance(job, _Items) else None):
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


def _run_items(conn: sqlite3.Connection, entries: list[_Items]) -> list[Outcome]:
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


class GroupCommitWriter(_SubmitsItems):
    """Owns the one write connection on a thread. `submit(job)` returns a Future resolved after COMMIT."""

    def __init__(self, db_path: Path | str, *, max_jobs_per_commit: int = 512, busy_timeout_ms: int = 2000) -> None:
        self._db_path = Path(db_path)
        self._max_jobs = max_jobs_per_commit
        self._busy_timeout_ms = busy_timeout_ms
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._busy = False  # a group is being committed

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    @property
    def idle(self) -> bool:
        return self.alive and self._queue.empty() and not self._busy

    def start(self) -> GroupCommitWriter:
        conn = open_write_connection(self._db_path, self._busy_timeout_ms)
        self._thread = threading.Thread(target=self._run, args=(conn,), name="smsdesk-writer", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Nothing to wait for: `start` opened the database on the caller's thread."""

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        if self._stopped:
            future.set_exception(WriterStopped("the writer is stopped"))
            return future
        self._queue.put((job, future))
        return future

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                self._busy = True
                if first is _STOP:
                    return
                group = [first]
                stop_after = False
                while len(group) < self._max_jobs:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop_after = True
                        break
                    group.append(item)
                live = [(job, fut) for job, fut in group if fut.set_running_or_notify_cancel()]
                if live:
                    for (_, fut), (ok, value) in zip(live, commit_group(conn, [job for job, _ in live]), strict=True):
                        if ok:
                            fut.set_result(value)
                        else:
                            fut.set_exception(value)
                self._busy = False
                if stop_after:
                    return
        finally:
            conn.close()
