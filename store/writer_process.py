"""The group-commit writer in a process of its own, so that it has a GIL of its own.

In one process the writer thread and the event loop take turns on the GIL: while the loop parses
a 100-message webhook the writer waits, and the writer's Python work (rules, row building, binding
parameters) holds up the loop in turn (bench/ingest.py shows the difference). Here a child
process runs the same group commit (`commit_group`) on the one write connection, on its only
thread, and the server's process parses, pickles and waits.

Protocol, over two socket pairs (jobs one way, answers the other), in length-prefixed frames
(store/frames.py) of pickled lists: the parent sends `[(job number, pickled job), ...]`; after
each commit the child sends the results of that group, `[(job number, ok, value or exception),
...]`. The child's first frame says it is ready (database opened and migrated) or why it is not.
In serve the event loop reads the answers (`start(loop)`), so a webhook's future is resolved on
the loop's own thread; elsewhere a thread reads them. How the parent batches what it sends: see
`_Child`.

Jobs must be picklable: module-level functions, `functools.partial` of them, or `job(func, ...)`.
A lambda is refused at `submit` with the pickling error, loudly, not in the child. A job that
fails comes back with its exception and the child's traceback as a note.

What a caller may conclude: a result means committed; the job's own exception means rolled
back; WriterStopped means not known (the child died, or its answer could not be read): the
caller must treat the job as maybe done and retry it, which is safe for everything serve
submits (a messageId stored twice is recognised, a mark applied twice is the same mark).

Lifetime: the child runs in a session of its own, so a terminal's Ctrl-C reaches only serve,
which then stops it in order; it ignores SIGINT and SIGTERM (systemd stops the whole cgroup) and
exits when its jobs socket reads EOF, after committing and answering what it was given.

It never outlives its serve. A child of a serve killed with SIGKILL while it waits for the write
lock (another process holds it) would otherwise commit what it holds when it gets the lock, after
the next serve started: a claim committed then left replies `sending` until the restart after
that. So the child also holds the read end of a pipe whose write end only its serve has (the
"lifeline"); a thread of its own blocks reading it, and when it reads EOF (the serve is gone,
however it died) the child exits at once, committing nothing more. (PR_SET_PDEATHSIG is not used:
it fires when the *thread* that started the child ends, and a child may be restarted from a
thread that ends before serve does.) Work of a serve's sender that still reaches the database
late is refused by its generation (store/fencing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from smsdesk.store.checkpointer import BurstCheckpointer
from smsdesk.store.frames import FrameBuffer, frame, receive
from smsdesk.store.writer import WriterStopped, _Items, _SubmitsItems, commit_group, open_write_connection

T = TypeVar("T")
R = TypeVar("R")
AnyFuture = Future[Any] | asyncio.Future[Any]  # a thread's (submit) or serve's loop's (run_items)
log = logging.getLogger("smsdesk.writer")

_READY = "ready"
HOLD_BACK_BYTES = 4096  # about 15 single-message webhooks; a 100-message one is about 6 KiB
MAX_IN_SOCKET = 128 * 1024  # unread bytes in the socket, below its buffer (about 200 KiB on Linux)
# After the child died, a new one is started at most this often: a child that cannot open the
# database must not be respawned for every request. The first death is answered at once (the last
# start is long past); a child that keeps dying is restarted every RESPAWN_INTERVAL_S.
RESPAWN_INTERVAL_S = 5.0
# Secrets the child has no use for: it only writes SQLite. An environment is readable in
# /proc/PID/environ by the same user, and a core dump of the child would carry it.
_SECRET_ENV = ("SMSDESK_WEBHOOK_PASSWORD", "SMSDESK_WEBHOOK_USER", "SMSDESK_API_KEY")
# The packages that jobs come from, imported before the child says it is ready so that the first
# webhook does not wait for them.
_JOB_MODULES = ("smsdesk.store.inbound", "smsdesk.store.outbox", "smsdesk.store.health", "smsdesk.store.expiry")


class ProcessWriter(_SubmitsItems):
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
        self._child: _Child | None = None
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
        if loop is None or _running_loop() is not loop:
            return await super().run_items(run, items)
        future: asyncio.Future[list[R]] = loop.create_future()
        self._send(_Items(run, list(items)), future)
        return await future

    def _send(self, job: Any, future: AnyFuture) -> None:
        payload = pickle.dumps(job, pickle.HIGHEST_PROTOCOL)  # a lambda fails here, in the caller
        with self._send_lock:
            child = self._live_child()
            if child is None:
                why = self._child.reason if self._child is not None and not self._stopped else "it was stopped"
                _settle(future, False, WriterStopped(f"the writer process is not running: {why}"))
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

    def _live_child(self) -> _Child | None:
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

    def _spawn(self) -> _Child:
        self._last_spawn = time.monotonic()
        return _Child.spawn(self._db_path, self._max_jobs, self._busy_timeout_ms, self._log_path,
                            on_exit=self._wake.set, loop=self._loop)


# The child runs this module of the installed package with -P: no script or working directory
# on sys.path, so a `store/` folder where serve was started is never imported instead of ours.
_CHILD_MODULE = "smsdesk.store.writer_process"


class _Child:
    """One writer process, its socket, the jobs sent to it, and who reads its answers.

    Reading: in serve, the event loop watches the socket (`watch`), so an answer resolves its
    webhook's future on the loop's own thread, with no second thread waking up and waiting for
    the GIL in between. Without a loop (tests, tools) a thread of its own reads.

    Sending: while the child has jobs unanswered it is committing a group and reads nothing
    until that is done, so a job sent now would only wait in the socket. Small jobs are held
    here instead and go together with the child's next answer (one write per group, not per
    webhook); a large one goes at once, so that the child never idles while its answer waits for
    this process, unless MAX_IN_SOCKET bytes already wait unread: a write into a full socket
    would block the event loop.
    """

    def __init__(self, process: subprocess.Popen[bytes], jobs: socket.socket, answers: socket.socket,
                 on_exit: Callable[[], None] | None = None) -> None:
        self.process = process
        self._on_exit = on_exit
        # One socket each way: watching `answers` from the event loop makes it non-blocking, and
        # a job larger than the socket's buffer must still be written whole.
        self.jobs = jobs
        self.answers = answers
        self.alive = True
        self.ready = threading.Event()  # set when the child said it is ready, or ended
        self.reason = "exited before answering"  # why it is no longer alive, once it is not
        self.pending: dict[int, AnyFuture] = {}  # sent or waiting to be sent, not yet answered
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, bytes]] = []  # jobs held back while the child is busy
        self._waiting_bytes = 0
        self._in_socket: dict[int, int] = {}  # job number -> bytes, sent and not yet answered
        self._in_socket_bytes = 0
        self._frames = FrameBuffer()
        self._said_ready = False
        self._finished = False  # no more answers will be read
        self._read_lock = threading.Lock()  # the loop's callback and close() may both read
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched = False  # registered with the loop's reader callbacks
        self._lifeline: int | None = None  # closed once the process has exited (see the module's "Lifetime")

    @classmethod
    def spawn(cls, db_path: Path, max_jobs: int, busy_timeout_ms: int, log_path: Path | None,
              on_exit: Callable[[], None] | None = None,
              loop: asyncio.AbstractEventLoop | None = None) -> _Child:
        jobs, their_jobs = socket.socketpair()
        their_answers, answers = socket.socketpair()
        # The lifeline: the child reads EOF on `their_lifeline` once `lifeline` is closed, which the
        # kernel does when this process dies. Neither end is inherited by anything else we start.
        their_lifeline, lifeline = os.pipe()
        log_fd: int | None = None
        try:
            if log_path is not None:
                log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", _CHILD_MODULE, str(db_path), str(their_jobs.fileno()),
                 str(their_answers.fileno()), str(max_jobs), str(busy_timeout_ms), str(their_lifeline)],
                pass_fds=(their_jobs.fileno(), their_answers.fileno(), their_lifeline),
                stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
                env={name: value for name, value in os.environ.items() if name not in _SECRET_ENV},
                # A terminal's Ctrl-C goes to serve's process group only: serve then stops the
                # writer in order, instead of the writer dying during its imports.
                start_new_session=True)
        except BaseException:
            jobs.close()
            answers.close()
            os.close(lifeline)
            raise
        finally:
            their_jobs.close()
            their_answers.close()
            os.close(their_lifeline)
            if log_fd is not None:
                os.close(log_fd)
        child = cls(process, jobs, answers, on_exit)
        child._lifeline = lifeline
        # Not waiting for the child's imports and migrations (half a second): jobs sent meanwhile
        # wait in the socket, and a child that cannot start fails them with its reason.
        if loop is None or not child._watch(loop):
            child._reader = threading.Thread(target=child._read, name="smsdesk-writer-results", daemon=True)
            child._reader.start()
        return child

    def send(self, number: int, payload: bytes, future: AnyFuture) -> None:
        with self._lock:
            if not self.alive:  # the reader ended since the caller looked: it fails nothing new
                _settle(future, False, WriterStopped(f"the writer process {self.reason}"))
                return
            self.pending[number] = future  # before sending: the answer can come back at once
            self._waiting.append((number, payload))
            self._waiting_bytes += len(payload)
            if not self._in_socket or (self._waiting_bytes >= HOLD_BACK_BYTES
                                       and self._in_socket_bytes + self._waiting_bytes <= MAX_IN_SOCKET):
                self._flush()
            # else: sent with the child's next answer (_answered)

    def _flush(self) -> None:
        """With `_lock` held: send what waits. A failed write ends this child (the reader then
        fails everything pending): half a frame may be in the socket, nothing after it can be read."""
        if not self._waiting:
            return
        waiting, self._waiting, self._waiting_bytes = self._waiting, [], 0
        try:
            self.jobs.sendall(frame(pickle.dumps(waiting, pickle.HIGHEST_PROTOCOL)))
        except OSError as exc:
            self.reason = f"could not be written to ({exc})"
            with contextlib.suppress(OSError):
                self.jobs.shutdown(socket.SHUT_RDWR)
            return
        for number, payload in waiting:
            self._in_socket[number] = len(payload)
        self._in_socket_bytes += sum(len(payload) for _, payload in waiting)

    def _answered(self, numbers: list[int]) -> None:
        with self._lock:
            for number in numbers:
                self._in_socket_bytes -= self._in_socket.pop(number, 0)
            self._flush()

    # --- reading answers -----------------------------------------------------------------------

    def _watch(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Read this child's answers on `loop`; False if the loop is closed (a thread reads then)."""
        self._loop = loop

        def register() -> None:
            if not self._finished:
                loop.add_reader(self.answers.fileno(), self._on_readable)
                self._watched = True

        try:
            if _running_loop() is loop:
                register()
            else:  # a respawn from the supervisor or a sender thread
                loop.call_soon_threadsafe(register)
        except RuntimeError:
            return False
        return True

    def _on_readable(self) -> None:
        with self._read_lock:
            if self._finished or self._consume(wait=False):
                return
            self._unwatch()
            self._end()
        # Reaping waits for the process: not on the event loop.
        threading.Thread(target=self._reap, name="smsdesk-writer-reap", daemon=True).start()

    def _read(self) -> None:
        """The reading thread, when there is no loop to watch the socket."""
        while self._consume(wait=True):
            pass
        with self._read_lock:
            self._end()
        self._reap()

    def _consume(self, *, wait: bool) -> bool:
        """Read what the child has sent and resolve it; False once nothing more can come."""
        try:
            if not receive(self.answers, self._frames, wait=wait):
                return False
            while (payload := self._frames.take()) is not None:
                if not self._handle(payload):
                    return False
            return True
        except OSError:
            return False
        except Exception as exc:  # an answer we cannot read: this child can no longer be trusted
            self.reason = f"sent an answer that could not be read ({exc.__class__.__name__}: {exc})"
            log.exception("the writer process %s", self.reason)
            return False

    def _handle(self, payload: bytes) -> bool:
        message = pickle.loads(payload)
        if not self._said_ready:
            if message != _READY:
                self.reason = f"could not open the database: {message}"
                log.error("the writer process %s", self.reason)
                return False
            self._said_ready = True
            self.ready.set()
            return True
        self._answered([number for number, _, _ in message])  # first: what waited goes at once
        for number, ok, value in message:
            _settle(self.pending.pop(number), ok, value)
        return True

    def _end(self) -> None:
        """With `_read_lock` held: no more answers will be read; fail what is still pending."""
        if self._finished:
            return
        self._finished = True
        with self._lock:  # from here on `send` fails jobs itself; what it added before is failed below
            self.alive = False
            self._waiting.clear()
            self._waiting_bytes = 0
        self.ready.set()
        with contextlib.suppress(OSError):  # EOF to the child, which then finishes and exits
            self.jobs.shutdown(socket.SHUT_RDWR)
        # Whatever is still pending may or may not have committed: the callers answer 503 and
        # Infobip's retry is recognised by its messageId if it did.
        while self.pending:
            _, future = self.pending.popitem()
            _settle(future, False, WriterStopped(f"the writer process {self.reason}"))

    def _unwatch(self) -> None:
        if not self._watched or self._loop is None:
            return
        self._watched = False
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # the loop is closed
            if _running_loop() is self._loop:
                self._loop.remove_reader(self.answers.fileno())
            else:
                self._loop.call_soon_threadsafe(self._loop.remove_reader, self.answers.fileno())

    def _reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)  # reaped as soon as it is gone, not at the next respawn
            self._cut_lifeline()
        if self._on_exit is not None:
            self._on_exit()

    def _cut_lifeline(self) -> None:
        """Once the process has exited: its lifeline is no longer needed (closing it earlier
        would make a child still committing what it was given exit before it answers)."""
        with self._lock:
            lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            os.close(lifeline)

    def close(self, timeout: float) -> None:
        """EOF to the child: it commits what it was sent, answers, and exits."""
        with self._lock:  # what was held back goes first, or it would be lost
            if self.alive:
                self._flush()
            with contextlib.suppress(OSError):  # already gone
                self.jobs.shutdown(socket.SHUT_WR)
        if self._reader is None:
            # Watched by the loop, which is busy here (this is serve stopping): the last answers are
            # read now, before waiting for the process, which could not exit with a full socket.
            with self._read_lock:
                if not self._finished:
                    self.answers.settimeout(timeout)
                    while self._consume(wait=True):
                        pass
                    self._end()
                self._unwatch()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the writer process did not exit within %.0f s; killing it", timeout)
            self.process.kill()
            self.process.wait()
        self._cut_lifeline()
        if self._reader is not None:
            self._reader.join(timeout)
        self.jobs.close()
        self.answers.close()


def _settle(future: AnyFuture, ok: bool, value: Any) -> None:
    """Resolve a job's future: a concurrent one from any thread, an event loop's own on that loop."""
    if isinstance(future, asyncio.Future):
        loop = future.get_loop()
        if _running_loop() is not loop:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, ok, value)
            return
        if future.done():  # its caller was cancelled; the job was committed (or not) all the same
            return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# --- the child ---------------------------------------------------------------------------------


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
    """The child's entry point (`python -P -m smsdesk.store.writer_process`):
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
    parent = _ParentLink(socket.socket(fileno=jobs_fd), socket.socket(fileno=answers_fd))
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
        parent.answers.sendall(frame(pickle.dumps(_READY)))
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


class _ParentLink:
    """The child's ends of the sockets: frames of jobs in, frames of answers out."""

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


# Errors after which this connection may stay broken when the cause is gone. SQLite opens a file it
# may not write read-only, silently, and such a connection stays read-only for good: after a
# read-only episode every write would fail until serve restarts. An I/O error can leave the
# same kind of stuck state. A new connection sees the file as it is now.
_REOPEN_AFTER = ("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")


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
        name = getattr(outcomes[0][1], "sqlite_errorname", "") or ""
        if name.startswith(_REOPEN_AFTER) and self._conn is not None:
            log.warning("the write connection failed with %s; it will be opened again", name)
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _serve_group(parent: _ParentLink, conn: _Reopening, max_jobs: int, checkpointer: BurstCheckpointer) -> bool:
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
