"""One sender per database: an advisory lock on a file beside it, held while `serve` sends.

Two senders on one database would each claim their own replies correctly, but a sender that
starts requeues what a dead one left in flight (store/outbox.py, `requeue_abandoned`), which is
only right when no other sender is alive. flock is released by the kernel when its holder dies,
SIGKILL included, so a crashed `serve` never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from smsdesk.store.paths import beside_database, beside_database_name


class SenderLockHeld(RuntimeError):
    pass


class SenderLock:
    def __init__(self, db_path: Path | str) -> None:
        self.path = beside_database(db_path, "-sender.lock")
        # Where smsdesk 0.2 took it when the database's name is a symlink: taken too, so that a
        # 0.2 serve started by that name and this one never both send.
        self.earlier_path = beside_database_name(db_path, "-sender.lock")
        self._fds: list[int] = []

    @property
    def held(self) -> bool:
        return bool(self._fds)

    def acquire(self) -> None:
        """Take the lock or raise SenderLockHeld naming the holder's pid. Idempotent."""
        if self._fds:
            return
        fds = [_lock(self.path)]
        try:
            if self.earlier_path is not None and (earlier := _lock_earlier(self.earlier_path)) is not None:
                fds.append(earlier)
        except BaseException:
            os.close(fds[0])
            raise
        self._fds = fds

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)  # closing the descriptor releases the flock


def _lock(path: Path) -> int:
    # O_CLOEXEC: the writer child must not inherit it and keep it after this process died.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    _flock(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_earlier(path: Path) -> int | None:
    """0.2's lock beside the symlink's name: created when that directory is ours to write (so that
    a 0.2 serve started later by that name is refused), else only taken if it exists (read-only is
    enough for flock); never a reason not to start."""
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
        except OSError:
            continue
        _flock(fd)
        return fd
    return None  # not there and not ours to create: no 0.2 serve has locked it by that name


def _flock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise SenderLockHeld(
            f"another smsdesk serve (pid {holder}) is sending replies from this database; stop it, "
            "or start this one with --no-send to only receive") from None
    except BaseException:
        os.close(fd)
        raise
