"""Webhooks committed by serve itself, on its event loop, without the hop to the writer process.

Group commit through the writer process pays when many webhooks are in progress: it commits
while serve parses the next ones. With few in progress there is little to overlap, and the two
hops (pickle, a socket, a process waking up, and back; and the groups of one or two that few
clients make) cost more than they save: at one connection that made serve's latency twice the
bare receiver's, and at 1 to 4 connections serve was behind it (bench/ingest.py). So, while the
writer has nothing in hand and /healthz's last check found nothing wrong (engine/healthz.py), a
webhook of a few results is committed here (`DirectCommits` decides):

- alone (the only request in progress): at once;
- with up to MAX_REQUESTS requests in progress: in a group, two turns of the loop later, so that
  the webhooks read meanwhile share the commit, as they would share the writer's.

Anything else goes to the writer: more requests in progress, a larger webhook (a commit here
stops the loop, so its size is bounded), a writer with jobs in hand, a declined commit.

The commit (`DirectCommitter`) runs the writer's own job (`store_inbound`) on a connection of
serve's own, in one transaction with synchronous=FULL, before the answer: the same rows, the same
durability, the same answer. It never waits and never decides a failure. Its busy timeout is 0:
when anyone else holds the write lock (the writer with a group of its own, a CLI command, the
TUI) it declines at once. Anything that goes wrong declines too, after a rollback. A declined
webhook goes to the writer, which waits for locks and answers every failure (503, a refused
result) as it always has. After storage trouble other than a busy lock the connection is closed
and the committer stays off for `pause` seconds: a broken disk costs a webhook one failed attempt
at most once per pause.

/healthz's verdict holds for webhooks both ways: while its last check, or the last webhook the
writer answered 503, found a problem, webhooks go to the writer, which answers what /healthz
says; a stale verdict is checked again in the background, so direct commits resume by
themselves once the problem is gone, whether or not anyone polls /healthz.

Callers: one thread at a time (serve's event loop); `open` (off the loop) and `close` around that.
After storage trouble the new connection is opened on a thread of its own. The receiver holds
the one reference (`Receiver.direct`); `serve --writer-only` leaves it None.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sized
from pathlib import Path
from typing import Any, Protocol, TypeVar

from smsdesk.store.errors import StorageTrouble, classify, error_name
from smsdesk.writer.jobs import Writer, open_write_connection

R = TypeVar("R")
log = logging.getLogger("smsdesk.direct")

MAX_REQUESTS = 4  # requests in progress up to which the loop commits
MAX_RESULTS = 10  # results in one webhook up to which the loop commits it
StoreRun = Callable[[sqlite3.Connection, list[Any]], list[Any]]


class HealthVerdict(Protocol):
    """What direct commits need of /healthz's verdict (engine/healthz.py, StorageHealth)."""

    @property
    def last_problem(self) -> str | None: ...

    def recheck_soon(self) -> None: ...


class DirectCommits:
    """`store(run, in_progress, rows)`: the outcomes of `run(conn, rows)` once committed on the loop,
    or None (the writer's turn)."""

    def __init__(self, committer: DirectCommitter, writer: Writer, health: HealthVerdict, *,
                 max_requests: int = MAX_REQUESTS, max_results: int = MAX_RESULTS) -> None:
        self.committer = committer
        self._writer = writer
        self._health = health
        self._max_requests = max_requests
        self._max_results = max_results
        self._group: list[tuple[list[Any], asyncio.Future[list[Any] | None]]] = []
        self._group_run: StoreRun | None = None

    async def store(self, run: StoreRun, in_progress: Collection[Any] | None, rows: list[Any]) -> list[Any] | None:
        """`in_progress`: the server's requests in progress, this one included (None: unknown)."""
        if self._group:  # a group is forming on this loop: join it, up to its bound
            if run is self._group_run and len(rows) <= self._max_results and len(self._group) < self._max_requests:
                return await self._join(rows)
            return None
        if not self._eligible(in_progress, rows):
            return None
        if len(in_progress) <= 1:  # type: ignore[arg-type]  # alone: nobody to wait for
            return self.committer.try_commit(run, rows)
        self._group_run = run
        loop = asyncio.get_running_loop()
        # Two turns: the first lets the requests already read reach this point, the second those
        # whose bytes the loop reads in between.
        loop.call_soon(loop.call_soon, self._commit_group)
        return await self._join(rows)

    def _eligible(self, in_progress: Sized | None, rows: list[Any]) -> bool:
        return (in_progress is not None and len(in_progress) <= self._max_requests
                and len(rows) <= self._max_results and self._writer.idle and self._healthy())

    def _healthy(self) -> bool:
        """/healthz's last verdict is ok; if not, it is checked again (in the background) once stale."""
        if self._health.last_problem is None:
            return True
        self._health.recheck_soon()
        return False

    async def _join(self, rows: list[Any]) -> list[Any] | None:
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._group.append((rows, future))
        return await future

    def _commit_group(self) -> None:
        group, self._group = self._group, []
        run, self._group_run = self._group_run, None
        outcomes = None
        try:
            # One run over all the rows, as the writer merges its callers' (a messageId twice in
            # the group is stored once); if it fails, each webhook goes to the writer, which finds
            # whose it was.
            # /healthz may have found a problem since the group began: its webhooks get its answer.
            if run is not None and self._healthy():
                outcomes = self.committer.try_commit(run, [row for rows, _ in group for row in rows])
        finally:  # whatever happened, no webhook is left waiting: None sends it to the writer
            start = 0
            for rows, future in group:
                mine = None if outcomes is None else outcomes[start:start + len(rows)]
                start += len(rows)
                if not future.done():  # its request was cancelled: committed all the same, like a writer job
                    future.set_result(mine)


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
        if classify(exc) in (None, StorageTrouble.BUSY):
            return  # this job fails on its input, or someone else is writing: the writer answers it
        # A read-only or I/O error can stick to a connection (writer/child.py, _Reopening):
        # the next attempt, after the pause, opens a new one.
        log.warning("direct commits are off for %.0f s after %s; the writer takes the webhooks",
                    self._pause, error_name(exc))
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
