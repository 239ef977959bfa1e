"""The writer process: what runs in the child that `ProcessWriter` (writer/parent.py) starts.

One thread waits for jobs from its serve (`ServeLink`), commits each group of them on the one
write connection (`commit_group`, writer/jobs.py), answers, and leaves WAL checkpoints during
bursts to a thread of its own (writer/child_checkpointer.py). After a failure that can stick to
a connection it opens a new one before the next group (`_Reopening`).

Lifetime: the child runs in a session of its own, so a terminal's Ctrl-C reaches only serve,
which then stops it in order; it ignores SIGINT and SIGTERM (systemd stops the whole cgroup) and
exits when its jobs socket reads EOF, after committing and answering what it was given.

The lifeline: it never outlives its serve. A child of a serve killed with SIGKILL while it waits
for the write lock (another process holds it) would otherwise commit what it holds when it gets
the lock, after the next serve started: a claim committed then left replies `sending` until the
restart after that. So the child also holds the read end of a pipe whose write end only its
serve has (the "lifeline"); a thread of its own blocks reading it, and when it reads EOF (the
serve is gone, however it died) the child exits at once, committing nothing more.
(PR_SET_PDEATHSIG is not used: it fires when the *thread* that started the child ends, and a
child may be restarted from a thread that ends before serve does.) Work of a serve's sender that
still reaches the database late is refused by its generation (writer/fencing.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import sqlite3
import sys
import threading
import time
import traceback
from typing import Any

from smsdesk.store.errors import StorageTrouble, classify, error_name
from smsdesk.writer.child_checkpointer import BurstCheckpointer
from smsdesk.writer.frames import READY, FrameBuffer, frame, receive
from smsdesk.writer.jobs import WriterStopped, commit_group, open_write_connection

log = logging.getLogger("smsdesk.writer")

# The packages that jobs come from, imported before the child says it is ready so that the first
# webhook does not wait for them.
_JOB_MODULES = ("smsdesk.store.inbound", "smsdesk.store.outbox", "smsdesk.store.heartbeat",
                "smsdesk.store.storage_check", "smsdesk.store.expiry")


def _picklable(results: list[tuple[int, bool, Any]]) -> bytes:
    try:
        return pickle.dumps(results, pickle.HIGHEST_PROTOCOL)
    except Exception:  # one odd value or exception must not lose the whole group's answers
        safe = []
        for number, ok, value in results:
            try:
                pickle.dumps(value)
            except Exception as exc:  # committed, but the caller cannot know: it answers 503
                ok, value = False, WriterStopped(f"the job's result could not be sent back: {exc}")
            safe.append((number, ok, value))
        return pickle.dumps(safe, pickle.HIGHEST_PROTOCOL)


def _crossing(exc: BaseException) -> BaseException:
    """`exc` with this process's traceback as a note (a traceback does not pickle, a note does),
    or a RuntimeError naming it when the parent could not unpickle it.

    An exception whose __init__ takes other arguments than its `args` (DuplicateError(field,
    message)) pickles but fails to unpickle, which would end the parent's reader thread and
    leave every waiting job failed while this process runs on. Only failures pay for the check.
    """
    if exc.__traceback__ is not None and not getattr(exc, "__notes__", None):
        # One failed commit hands the same exception to every job of the group: one note.
        exc.add_note("in the writer process:\n" + "".join(traceback.format_tb(exc.__traceback__)).rstrip())
    try:
        pickle.loads(pickle.dumps(exc, pickle.HIGHEST_PROTOCOL))
    except Exception:
        return RuntimeError(f"{exc.__class__.__name__}: {exc}")
    return exc


def main(argv: list[str]) -> int:
    """The child's entry point (`python -P -m smsdesk.writer.child`, writer/parent_link.py):
    DB_PATH JOBS_FD ANSWERS_FD MAX_JOBS BUSY_TIMEOUT_MS [LIFELINE_FD]."""
    db_path, jobs_fd, answers_fd, max_jobs, busy_timeout_ms, *lifeline = argv
    if lifeline:
        watch_lifeline(int(lifeline[0]))
    return child_main(db_path, int(jobs_fd), int(answers_fd), int(max_jobs), int(busy_timeout_ms))


def watch_lifeline(fd: int) -> threading.Thread:
    """Exit this process at once when the lifeline's other end closes (its serve is gone)."""

    def watch() -> None:
        try:
            while os.read(fd, 64):
                pass  # nothing is ever written: only EOF is expected
        except OSError:
            pass
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} smsdesk.writer ERROR the serve that started "
                             f"this writer process is gone: exiting without committing anything more\n")
            sys.stderr.flush()
        os._exit(3)

    thread = threading.Thread(target=watch, name="smsdesk-writer-lifeline", daemon=True)
    thread.start()
    return thread


def child_main(db_path: str, jobs_fd: int, answers_fd: int, max_jobs: int, busy_timeout_ms: int) -> int:
    """One thread: wait for jobs, take every job that has arrived, commit them as one group, answer.

    No reader thread: the jobs that arrive while a group commits wait in the socket, and a
    second thread here would only take the GIL from the writer to move them into a queue. (The
    checkpointer's thread sleeps but during bursts, and then waits in SQLite, without the GIL.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parent = ServeLink(socket.socket(fileno=jobs_fd), socket.socket(fileno=answers_fd))
    try:
        conn = _Reopening(db_path, busy_timeout_ms)
        for module in _JOB_MODULES:
            __import__(module)
    except Exception as exc:
        with contextlib.suppress(OSError):  # the parent may be gone already
            parent.answers.sendall(frame(pickle.dumps(f"{exc.__class__.__name__}: {exc}")))
        return 1
    checkpointer = BurstCheckpointer(db_path)
    try:
        parent.answers.sendall(frame(pickle.dumps(READY)))
        while _serve_group(parent, conn, max_jobs, checkpointer):
            pass
    except OSError:  # the parent went away before the first job: nothing to do
        pass
    finally:
        checkpointer.stop()
        conn.close()
        parent.jobs.close()
        parent.answers.close()
    return 0


class ServeLink:
    """The child's ends of the sockets to its serve: frames of jobs in, frames of answers out."""

    def __init__(self, jobs: socket.socket, answers: socket.socket) -> None:
        self.jobs = jobs
        self.answers = answers
        self.frames = FrameBuffer()
        self.eof = False

    def wait(self) -> None:
        """Block until a whole frame has arrived or the parent has closed its end; then take
        whatever else has arrived too, without waiting for more."""
        try:
            while not self.eof and not self.frames.has_frame():
                self.eof = not receive(self.jobs, self.frames, wait=True)
            if not self.eof:
                self.eof = not receive(self.jobs, self.frames, wait=False)
        except OSError:  # the parent is gone: finish what was read, then exit
            self.eof = True

    @property
    def done(self) -> bool:
        return self.eof and not self.frames.has_frame()


# Troubles after which this connection may stay broken when the cause is gone. SQLite opens a file
# it may not write read-only, silently, and such a connection stays read-only for good: after a
# read-only episode every write would fail until serve restarts. An I/O error can leave the
# same kind of stuck state. A new connection sees the file as it is now.
_REOPEN_AFTER = {StorageTrouble.READ_ONLY, StorageTrouble.IO, StorageTrouble.CANT_OPEN}


class _Reopening:
    """The child's write connection, opened again before the next group after a sticky error."""

    def __init__(self, db_path: str, busy_timeout_ms: int) -> None:
        self._db_path = db_path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = open_write_connection(db_path, busy_timeout_ms)

    @property
    def current(self) -> sqlite3.Connection | None:
        """The open connection, if any (after a sticky error there is none until `get`)."""
        return self._conn

    def get(self) -> sqlite3.Connection:
        """The connection; a new one if the last group failed with a sticky error (raises if it cannot)."""
        if self._conn is None:
            self._conn = open_write_connection(self._db_path, self._busy_timeout_ms)
            log.info("the write connection was opened again")
        return self._conn

    def after(self, outcomes: list[tuple[bool, Any]]) -> None:
        """Drop the connection when the whole group failed with an error a new one may not have."""
        if not outcomes or any(ok for ok, _ in outcomes):
            return
        failure = outcomes[0][1]
        # Only SQLite's own errors: what Python code in a job raised leaves the connection as it was.
        if isinstance(failure, sqlite3.Error) and classify(failure) in _REOPEN_AFTER and self._conn is not None:
            log.warning("the write connection failed with %s; it will be opened again", error_name(failure))
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _serve_group(parent: ServeLink, conn: _Reopening, max_jobs: int, checkpointer: BurstCheckpointer) -> bool:
    """Commit and answer one group; False once the parent has closed its end and all is answered."""
    numbers: list[int] = []
    jobs: list[Any] = []
    answers: list[tuple[int, bool, Any]] = []  # jobs that could not even be read
    parent.wait()
    while len(jobs) + len(answers) < max_jobs and (payload := parent.frames.take()) is not None:
        for number, job_payload in pickle.loads(payload):
            try:
                jobs.append(pickle.loads(job_payload))
                numbers.append(number)
            except Exception as exc:  # e.g. a job from code newer than this process: retry later
                answers.append((number, False, WriterStopped(f"the writer could not read the job: {exc}")))
    if jobs:
        try:
            outcomes = commit_group(conn.get(), jobs)
        except (sqlite3.Error, OSError) as exc:  # cannot open the database now: every job gets why (503)
            outcomes = [(False, exc)] * len(jobs)
        conn.after(outcomes)
        for number, (ok, value) in zip(numbers, outcomes, strict=True):
            answers.append((number, ok, value if ok else _crossing(value)))
    if answers:
        with contextlib.suppress(OSError):  # the parent is gone: the commit stands, nobody waits
            parent.answers.sendall(frame(_picklable(answers)))
    if jobs and conn.current is not None:
        checkpointer.after_commit(conn.current)  # after the answers: a checkpoint must not delay them
    return not parent.done


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
