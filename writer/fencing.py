"""The sender's generation: work of a sender that was replaced cannot commit (table
`sender_generation`, migration 13).

A `serve` killed while its writer child waits for the write lock leaves that child holding jobs
(a claim, a record) that it commits when it gets the lock, possibly after the next `serve` has
requeued what was in flight: the claimed replies then stay `sending` until the next restart.
The writer child no longer outlives its `serve` (writer/child.py, the lifeline), and the database
refuses such work anyway:

- a sender that starts takes the next generation (`begin_generation`, one writer job) before it
  touches anything an earlier sender left: journaled answers, replies in flight, the requeue;
- every write of the sender runs fenced (`FencedWriter`, which serve hands to the sender in
  place of its writer): inside the job's transaction, under the write lock, it first checks
  that the generation is still the current one, and raises `SenderFenced` (the job's savepoint
  is rolled back: nothing of it is written) when a later sender has taken over;
- each claimed reply records the generation that claimed it (`outbox.sender_generation`, written
  by the claim from this table, which the fence has just checked).

SQLite serialises the two: a late job of the old generation commits either before the new
sender's `begin_generation` (and the new sender then sees and requeues what it claimed) or after
it (and changes nothing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from smsdesk.store.db import utcnow
from smsdesk.writer.jobs import Writer, job

T = TypeVar("T")


class SenderFenced(RuntimeError):
    """A later sender took over the outbox: this sender's work was not written."""


def begin_generation(conn: sqlite3.Connection, pid: int) -> int:
    """A writer job: this sender's generation, the next one; from its commit on, the work of every
    earlier generation is refused."""
    conn.execute("UPDATE sender_generation SET generation = generation + 1, pid = ?, started_at = ? WHERE id = 1",
                 (pid, utcnow()))
    return current_generation(conn)


def current_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT generation FROM sender_generation WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def current_sender(conn: sqlite3.Connection) -> tuple[int, int, str]:
    """(generation, pid, started_at) of the sender that took the outbox last (for operators)."""
    row = conn.execute("SELECT generation, pid, started_at FROM sender_generation WHERE id = 1").fetchone()
    return (int(row[0]), int(row[1]), str(row[2])) if row else (0, 0, "")


def run_fenced(conn: sqlite3.Connection, generation: int, inner: Callable[[sqlite3.Connection], T]) -> T:
    """A writer job: the job `inner` if `generation` is still the current one, else SenderFenced."""
    current = current_generation(conn)
    if current != generation:
        raise SenderFenced(f"sender generation {generation} was replaced by generation {current}: not written")
    return inner(conn)


class FencedWriter:
    """A writer for one sender: every job it submits runs fenced by the sender's generation.

    `begin` takes the next generation (through the writer it wraps, unfenced); jobs submitted
    before that fail with SenderFenced. Everything else is the wrapped writer's.
    """

    def __init__(self, writer: Writer, on_fenced: Callable[[], object] | None = None) -> None:
        self.inner = writer
        self.generation: int | None = None
        self.fenced_out = False  # a job was refused: a later sender took over
        # Called (from whichever thread resolves the job) when a job is refused for that reason.
        self.on_fenced = on_fenced

    def begin(self, pid: int) -> Future[int]:
        """Submit `begin_generation`; once it is committed this writer fences with its result."""
        future = self.inner.submit(job(begin_generation, pid))

        def taken(done: Future[int]) -> None:
            if done.exception() is None:
                self.generation = done.result()
        future.add_done_callback(taken)
        return future

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        if self.generation is None:
            refused: Future[T] = Future()
            refused.set_exception(SenderFenced("the sender has no generation yet: not written"))
            return refused
        future = self.inner.submit(job(run_fenced, self.generation, work))

        def check(done: Future[T]) -> None:
            if isinstance(done.exception(), SenderFenced) and not self.fenced_out:
                self.fenced_out = True
                if self.on_fenced is not None:
                    self.on_fenced()
        future.add_done_callback(check)
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
