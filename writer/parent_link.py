"""Serve's side of the pipe to one writer process: starting it, sending it jobs, reading its answers.

Protocol, over two socket pairs (jobs one way, answers the other), in length-prefixed frames
(writer/frames.py) of pickled lists: this side sends `[(job number, pickled job), ...]`; after
each commit the child (writer/child.py) sends the results of that group, `[(job number, ok,
value or exception), ...]`. The child's first frame says it is ready (database opened and
migrated) or why it is not. In serve the event loop reads the answers, so a webhook's future is
resolved on the loop's own thread; elsewhere a thread reads them. How jobs are batched: see
`ChildLink`. Who restarts a child that died: writer/parent.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from smsdesk.writer.frames import READY, FrameBuffer, frame, receive
from smsdesk.writer.jobs import WriterStopped

AnyFuture = Future[Any] | asyncio.Future[Any]  # a thread's (submit) or serve's loop's (run_items)
log = logging.getLogger("smsdesk.writer")

HOLD_BACK_BYTES = 4096  # about 15 single-message webhooks; a 100-message one is about 6 KiB
MAX_IN_SOCKET = 128 * 1024  # unread bytes in the socket, below its buffer (about 200 KiB on Linux)
# Secrets the child has no use for: it only writes SQLite. An environment is readable in
# /proc/PID/environ by the same user, and a core dump of the child would carry it.
_SECRET_ENV = ("SMSDESK_WEBHOOK_PASSWORD", "SMSDESK_WEBHOOK_USER", "SMSDESK_API_KEY")
# The child runs this module of the installed package with -P: no script or working directory
# on sys.path, so a `writer/` folder where serve was started is never imported instead of ours.
CHILD_MODULE = "smsdesk.writer.child"


class ChildLink:
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
        self._lifeline: int | None = None  # closed once the process has exited (see writer/child.py, "The lifeline")

    @classmethod
    def spawn(cls, db_path: Path, max_jobs: int, busy_timeout_ms: int, log_path: Path | None,
              on_exit: Callable[[], None] | None = None,
              loop: asyncio.AbstractEventLoop | None = None) -> ChildLink:
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
                [sys.executable, "-P", "-m", CHILD_MODULE, str(db_path), str(their_jobs.fileno()),
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
                settle(future, False, WriterStopped(f"the writer process {self.reason}"))
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
            if running_loop() is loop:
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
            if message != READY:
                self.reason = f"could not open the database: {message}"
                log.error("the writer process %s", self.reason)
                return False
            self._said_ready = True
            self.ready.set()
            return True
        self._answered([number for number, _, _ in message])  # first: what waited goes at once
        for number, ok, value in message:
            settle(self.pending.pop(number), ok, value)
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
            settle(future, False, WriterStopped(f"the writer process {self.reason}"))

    def _unwatch(self) -> None:
        if not self._watched or self._loop is None:
            return
        self._watched = False
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # the loop is closed
            if running_loop() is self._loop:
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


def settle(future: AnyFuture, ok: bool, value: Any) -> None:
    """Resolve a job's future: a concurrent one from any thread, an event loop's own on that loop."""
    if isinstance(future, asyncio.Future):
        loop = future.get_loop()
        if running_loop() is not loop:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(settle, future, ok, value)
            return
        if future.done():  # its caller was cancelled; the job was committed (or not) all the same
            return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
