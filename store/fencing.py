"""The sender's generation: work of a sender that was replaced cannot commit (table
`sender_generation`, migration 13).

A `serve` killed while its writer child waits for the write lock leaves that child holding jobs
(a claim, a record) that it commits when it gets the lock, possibly after the next `serve` has
requeued what was in flight: the claimed replies then stay `sending` until the next restart.
The writer child no longer outlives its `serve` (store/writer_process.py), and the database
refuses such work anyway:

- a sender that starts takes the next generation (`begin_generation`, one writer job) before it
  touches anything an earlier sender left: journaled answers, replies in flight, the requeue;
- every write of the sender runs as `fenced(generation, job, ...)`: inside the job's transaction,
  under the write lock, it first checks that the generation is still the current one, and
  raises `SenderFenced` (the job's savepoint is rolled back: nothing of it is written) when a
  later sender has taken over;
- each claimed reply records the generation that claimed it (`outbox.sender_generation`).

SQLite serialises the two: a late job of the old generation commits either before the new
sender's `begin_generation` (and the new sender then sees and requeues what it claimed) or after
it (and changes nothing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from smsdesk.store.db import utcnow

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


def fenced(conn: sqlite3.Connection, generation: int, func: Callable[..., T], *args: Any) -> T:
    """A writer job: `func(conn, *args)` if `generation` is still the current one, else SenderFenced
    (nothing written). Run inside the writer's transaction, so the check and the work are one."""
    current = current_generation(conn)
    if current != generation:
        raise SenderFenced(f"sender generation {generation} was replaced by generation {current}: "
                           f"{getattr(func, '__name__', 'the job')} not written")
    return func(conn, *args)
