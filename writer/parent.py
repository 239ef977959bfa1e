"""The writer in a process of its own, so that it has a GIL of its own: `ProcessWriter`, serve's side.

In one process the writer thread and the event loop take turns on the GIL: while the loop parses
a 100-message webhook the writer waits, and the writer's Python work (rules, row building, binding
parameters) holds up the loop in turn (bench/ingest.py shows the difference). Here a child
process (writer/child.py) runs the same group commit (`commit_group`) on the one write
connection, on its only thread, and the server's process parses, pickles and waits. This module
starts the child, restarts it when it dies, and hands it jobs; writer/parent_link.py is the link
to one child (the pipe, its batching, the answers read on serve's loop).

Jobs must be picklable: module-level functions, `functools.partial` of them, or `job(func, ...)`.
A lambda is refused at `submit` with the pickling error, loudly, not in the child. A job that
fails comes back with its exception and the child's traceback as a note.

What a caller may conclude: a result means committed; the job's own exception means rolled
back; WriterStopped means not known (the child died, or its answer could not be read): the
caller must treat the job as maybe done and retry it, which is safe for everything serve
submits (a messageId stored twice is recognised, a mark applied twice is the same mark).

Lifetime: the child never outlives its serve: it exits when its jobs socket reads EOF (serve
stopping it in order) and at once when its lifeline reads EOF (serve gone, however it died);
see writer/child.py.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from smsdesk.writer.jobs import ItemsJob, SubmitsItems, WriterStopped
from smsdesk.writer.parent_link import AnyFuture, ChildLink, running_loop, settle

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("smsdesk.writer")

# After the child died, a new one is started at most this often: a child that cannot open the
# database must not be respawned for every request. The first death is answered at once (the last
# start is long past); a child that keeps dying is restarted every RESPAWN_INTERVAL_S.
RESPAWN_INTERVAL_S = 5.0


class ProcessWriter(SubmitsItems):
    """`GroupCommitWriter`'s interface, with the writer in a child process."""

    def __init__(self, db_path: Path | str, *, max_jobs_per_commit: int = 512, busy_timeout_ms: int = 2000,
                 respawn_interval: float = RESPAWN_INTERVAL_S, log_path: Path | None = None) -> None:
        self._db_path = Path(db_path)
        # Where the child's log lines go; None: this process's stderr. A TUI in this process (the
        # demo) needs a file, or a warning from the child would be written across its screen.
        self._log_path = log_path
        self._respawn_interval = respawn_interval
        self._max_jobs = max_jobs_per_commit
        self._busy_timeout_ms = busy_timeout_ms
        self._send_lock = threading.Lock()
        self._numbers = iter(range(1, 2**63))
        self._child: ChildLink | None = None
        self._stopped = False
        self._last_spawn = 0.0
        # Set when a child ends or stop() is called: wakes the supervisor, which restarts the
        # writer without waiting for a job to need it (a load balancer polling /healthz sends none).
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> ProcessWriter:
        """Start the child; it opens the database while the caller goes on (see `wait_ready`).

        With `loop` (serve's event loop) the answers are read on that loop; else on a thread.
        """
        self._loop = loop
        with self._send_lock:
            if self._child is None:
                self._child = self._spawn()
            if self._supervisor is None:
                self._supervisor = threading.Thread(target=self._supervise, name="smsdesk-writer-supervisor",
                                                    daemon=True)
                self._supervisor.start()
        return self

    def _supervise(self) -> None:
        """Restart a dead child within the respawn interval, traffic or not."""
        while True:
            self._wake.wait()
            self._wake.clear()
            while not self._stopped:
                child = self._child
                if child is not None and child.alive:
                    break
                delay = self._last_spawn + self._respawn_interval - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, 0.5))  # short naps: stop() must not wait out the interval
                    continue
                with self._send_lock:
                    replaced = self._live_child()
                if replaced is None and not self._stopped:
                    continue  # could not fork: the loop waits out the interval and tries again
                break
            if self._stopped:
                return

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the child has opened (and migrated) the database; WriterStopped if it could not."""
        child = self._child
        if child is None or not child.ready.wait(timeout) or not child.alive:
            why = child.reason if child is not None else "it was not started"
            raise WriterStopped(f"the writer process is not running: {why}")

    @property
    def alive(self) -> bool:
        """The child has opened the database and is taking jobs (for /healthz)."""
        child = self._child
        return child is not None and child.alive and child.ready.is_set()

    @property
    def idle(self) -> bool:
        """No job sent or held back is waiting for its answer. (Read without the lock: a job
        sent by another thread a moment later finds the write lock taken and waits for it.)"""
        child = self._child
        return child is not None and child.alive and child.ready.is_set() and not child.pending

    def submit(self, job: Callable[[Any], T]) -> Future[T]:
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()  # sent means running: a late cancel cannot unsend it
        self._send(job, future)
        return future

    async def run_items(self, run: Callable[[Any, list[Any]], list[R]], items: list[Any]) -> list[R]:
        """On serve's loop, the answer resolves a future of the loop itself: no hand-over through
        `call_soon_threadsafe` and a second turn of the loop between the answer and its webhook."""
        loop = self._loop
        if loop is None or running_loop() is not loop:
            return await super().run_items(run, items)
        future: asyncio.Future[list[R]] = loop.create_future()
        self._send(ItemsJob(run, list(items)), future)
        return await future

    def _send(self, job: Any, future: AnyFuture) -> None:
        payload = pickle.dumps(job, pickle.HIGHEST_PROTOCOL)  # a lambda fails here, in the caller
        with self._send_lock:
            child = self._live_child()
            if child is None:
                why = self._child.reason if self._child is not None and not self._stopped else "it was stopped"
                settle(future, False, WriterStopped(f"the writer process is not running: {why}"))
                return
            child.send(next(self._numbers), payload, future)

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs (for operators and tests)."""
        child = self._child
        return child.process.pid if child is not None and child.alive else None

    def stop(self, timeout: float = 10.0) -> None:
        with self._send_lock:
            self._stopped = True
            child, self._child = self._child, None
        self._wake.set()
        if child is not None:
            child.close(timeout)
        if self._supervisor is not None:
            self._supervisor.join(timeout)

    def _live_child(self) -> ChildLink | None:
        """The running child; a dead one is replaced, at most once per respawn interval."""
        if self._stopped:
            return None
        if self._child is not None and self._child.alive:
            return self._child
        if time.monotonic() - self._last_spawn < self._respawn_interval:
            return None
        if self._child is not None:
            log.error("the writer process %s (exit code %s); starting a new one", self._child.reason,
                      self._child.process.poll())
            self._child.close(1.0)  # reaped, its descriptors closed
        try:
            self._child = self._spawn()
        except OSError as exc:  # no fork, no fds: say so, and try again after the interval
            log.error("could not start the writer process: %s", exc)
            return None
        return self._child

    def _spawn(self) -> ChildLink:
        self._last_spawn = time.monotonic()
        return ChildLink.spawn(self._db_path, self._max_jobs, self._busy_timeout_ms, self._log_path,
                            on_exit=self._wake.set, loop=self._loop)
