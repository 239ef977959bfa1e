"""The writer on a thread of the caller's process: `GroupCommitWriter`.

`serve` runs its writer in a child process (writer/parent.py), which has a GIL of its own; this
one is for `serve --writer-in-process` (bench/ingest.py's A/B of what the child process buys) and
for tests and tools that want a writer without a process.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from smsdesk.writer.jobs import SubmitsItems, WriterStopped, commit_group, open_write_connection

T = TypeVar("T")

_STOP = object()


class GroupCommitWriter(SubmitsItems):
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
