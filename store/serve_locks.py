"""One sender per database file, whatever name reaches it; and one name per database file served.

Two senders on one database would each claim their own replies correctly, but a sender that
starts takes over what a dead one left in flight (store/outbox.py), which is only right when no
other sender is alive. And SQLite keeps a database's WAL beside the name it was opened by: two
names of one file (a hard link) are two WALs, and what is committed through one is lost to the
other (40 acknowledged webhooks were lost that way).

So the exclusion follows the database file itself (its inode), not a file beside one of its names,
which could be deleted, or which a hard link would not find:

- the sender holds a write lock on one byte of the database file (`SENDER_BYTE`), an
  open-file-description lock (Linux's F_OFD_SETLK): per open file, released by the kernel when
  its holder dies (SIGKILL included), and never on a byte SQLite locks (SQLite's locks lie from
  1 GiB, PENDING_BYTE, to 1 GiB + 512 bytes; these lie past 4 EiB), so they do not touch
  SQLite's own locking, which works on the same file with classic POSIX locks;
- every `serve`, sending or not, holds a read lock on one more byte, which stands for the name
  it opened the file by (`ServedName`: the device and inode of the name's directory and the
  name's last part, hashed; what decides where SQLite's WAL is), and refuses to start when a byte
  of another name is locked: the file is served by another name.

Closing any descriptor of a file drops every classic POSIX lock this process holds on it,
SQLite's included (store/paths.py, prepare_private_file). So the descriptor these locks live on
is closed only when no other descriptor of the file is open in this process (/proc/self/fd says);
otherwise it is unlocked and kept for the next holder in this process.

The lock file `<database>-sender.lock` is still taken too, and keeps the holder's pid for the
refusal's message: an smsdesk 0.3 serve (which knows only that file) and this one never both
send. Where Linux's open-file-description locks are missing, the sender falls back to flock on
the database file (one sender by the file still; names are not checked).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import threading
from pathlib import Path

from smsdesk.store.paths import beside_database, beside_database_name, prepare_private_file

SENDER_BYTE = 1 << 62
NAMES_START = SENDER_BYTE + 1
NAMES_SPAN = 1 << 31
_OFD = hasattr(fcntl, "F_OFD_SETLK") and hasattr(fcntl, "F_OFD_GETLK")
_FLOCK = "@hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (padded by the platform)
_FLOCK_SIZE = 64  # room for the platform's struct flock, whatever its padding


class SenderLockHeld(RuntimeError):
    pass


class DatabaseServedByAnotherName(SenderLockHeld):
    """The database file is served by another `serve` that reached it by another name."""


# --------------------------------------------------------------------------- descriptors

_pool_lock = threading.Lock()
_free: dict[tuple[int, int], list[int]] = {}  # unlocked descriptors kept open, by (st_dev, st_ino)


def _file_key(path: str | os.PathLike[str]) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _take_descriptor(path: Path) -> tuple[tuple[int, int], int]:
    """An open file description of the database file holding no lock of ours."""
    key = _file_key(path)
    with _pool_lock:
        free = _free.get(key)
        if free:
            return key, free.pop()
    _close_unused()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)  # a write lock needs a descriptor open for writing
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # a read lock (the name) is still possible
    stat = os.fstat(fd)
    if (stat.st_dev, stat.st_ino) != key:  # replaced between the stat and the open
        _give_back(key, fd)
        return _take_descriptor(path)
    return key, fd


def _give_back(key: tuple[int, int], fd: int) -> None:
    """Unlock everything of ours on `fd`; close it if nothing else of this process has the file
    open (closing would drop SQLite's locks otherwise), else keep it for the next holder."""
    if _OFD:
        _ofd_lock(fd, fcntl.F_UNLCK, SENDER_BYTE, 0)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    if _alone(key, fd):
        os.close(fd)
    else:
        with _pool_lock:
            _free.setdefault(key, []).append(fd)


def _close_unused() -> None:
    """Close the kept descriptors of files this process no longer has open otherwise."""
    with _pool_lock:
        for key, fds in list(_free.items()):
            for fd in list(fds):
                if _alone(key, fd):
                    fds.remove(fd)
                    os.close(fd)
            if not fds:
                del _free[key]


def _alone(key: tuple[int, int], mine: int) -> bool:
    """No descriptor of this process but `mine` (and the pool's) is open on the file `key`."""
    kept = {fd for fds in _free.values() for fd in fds}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return False  # cannot tell: keep it
    for name in names:
        fd = int(name)
        if fd == mine or fd in kept:
            continue
        try:
            stat = os.fstat(fd)
        except OSError:
            continue  # closed meanwhile (or the listing's own descriptor)
        if (stat.st_dev, stat.st_ino) == key:
            return False
    return True


def _ofd_lock(fd: int, kind: int, start: int, length: int, *, test: bool = False) -> int:
    """F_OFD_SETLK (or F_OFD_GETLK with `test`) on [start, start + length) (0: to the end of
    any file). Returns the type of a lock that conflicts (GETLK), else F_UNLCK. Raises
    BlockingIOError when SETLK meets a conflicting lock."""
    request = struct.pack(_FLOCK, kind, os.SEEK_SET, start, length, 0).ljust(_FLOCK_SIZE, b"\0")
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK if test else fcntl.F_OFD_SETLK, request)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise BlockingIOError(exc.errno, "held by another") from None
        raise
    return int(struct.unpack_from(_FLOCK, answer)[0]) if test else fcntl.F_UNLCK


# --------------------------------------------------------------------------- the name served


def name_byte(db_path: Path | str) -> int:
    """The byte that stands for the name SQLite opens the database by: its WAL is `<that name>-wal`,
    so two names share a WAL when their directories are one directory and their last parts agree."""
    real = os.path.realpath(db_path)
    directory = os.stat(os.path.dirname(real))
    digest = hashlib.blake2b(f"{directory.st_dev}:{directory.st_ino}:{os.path.basename(real)}".encode(),
                             digest_size=8).digest()
    return NAMES_START + int.from_bytes(digest, "big") % NAMES_SPAN


class ServedName:
    """A read lock on the byte of the name this serve opened the database by; refused when the
    file is served by another name."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self._held: tuple[tuple[int, int], int] | None = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def acquire(self) -> None:
        """Hold this name, or raise DatabaseServedByAnotherName. Idempotent; nothing to do where
        open-file-description locks are missing or the file does not exist yet."""
        if self._held is not None or not _OFD or not self.db_path.exists():
            return
        key, fd = _take_descriptor(self.db_path)
        try:
            mine = name_byte(self.db_path)
            _ofd_lock(fd, fcntl.F_RDLCK, mine, 1)
            # Asked as a writer would: any other name's read lock is in the way.
            others = (_ofd_lock(fd, fcntl.F_WRLCK, NAMES_START, mine - NAMES_START, test=True)
                      if mine > NAMES_START else fcntl.F_UNLCK)
            if others == fcntl.F_UNLCK and mine + 1 < NAMES_START + NAMES_SPAN:
                others = _ofd_lock(fd, fcntl.F_WRLCK, mine + 1, NAMES_START + NAMES_SPAN - mine - 1, test=True)
        except BaseException:
            _give_back(key, fd)
            raise
        if others != fcntl.F_UNLCK:
            _give_back(key, fd)
            stat = os.stat(self.db_path)
            raise DatabaseServedByAnotherName(
                f"{self.db_path} is a second name of a database file that another smsdesk serve runs on by another "
                f"name (a hard link or another path to inode {stat.st_ino}; SQLite keeps one WAL per name, so "
                "writes through two names are lost): start serve with the name that one uses")
        self._held = key, fd

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            _give_back(*held)


# --------------------------------------------------------------------------- the sender


class SenderLock:
    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self.path = beside_database(db_path, "-sender.lock")
        # Where smsdesk 0.2 took it when the database's name is a symlink: taken too, so that a
        # 0.2 serve started by that name and this one never both send.
        self.earlier_path = beside_database_name(db_path, "-sender.lock")
        self.name = ServedName(db_path)
        self._file: tuple[tuple[int, int], int] | None = None
        self._fds: list[int] = []

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock or raise SenderLockHeld naming the holder's pid (when known). Idempotent.
        Also holds the name (`ServedName`): a second name of a served file is refused first."""
        if self._file is not None:
            return
        self.name.acquire()
        held: tuple[tuple[int, int], int] | None = None
        fds: list[int] = []
        try:
            held = self._lock_file()
            fds.append(_lock(self.path))
            if self.earlier_path is not None and (earlier := _lock_earlier(self.earlier_path)) is not None:
                fds.append(earlier)
        except BaseException:
            for fd in fds:
                os.close(fd)
            if held is not None:
                _give_back(*held)
            self.name.release()
            raise
        self._file, self._fds = held, fds

    def _lock_file(self) -> tuple[tuple[int, int], int]:
        """The write lock on SENDER_BYTE of the database file itself (created first, 0600 in a
        0700 directory, if it is not there yet: SQLite would create it so)."""
        if not self.db_path.exists():
            prepare_private_file(self.db_path)
            self.name.acquire()  # now that there is a file to hold it on
        key, fd = _take_descriptor(self.db_path)
        try:
            if _OFD:
                _ofd_lock(fd, fcntl.F_WRLCK, SENDER_BYTE, 1)
            else:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _give_back(key, fd)
            raise SenderLockHeld(_held_message(_pid_in(self.path))) from None
        except OSError as exc:
            _give_back(key, fd)
            if exc.errno == errno.EBADF:  # a descriptor open for reading only: the file is not writable
                raise SenderLockHeld(f"cannot lock {self.db_path} for sending: the file is not writable; start "
                                     "serve with --no-send to only receive") from None
            raise
        except BaseException:
            _give_back(key, fd)
            raise
        return key, fd

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)  # closing the descriptor releases the flock
        held, self._file = self._file, None
        if held is not None:
            _give_back(*held)
        self.name.release()


def _held_message(pid: str | None) -> str:
    holder = f"another smsdesk serve (pid {pid})" if pid else "another smsdesk serve"
    return (f"{holder} is sending replies from this database; stop it, or start this one with --no-send to "
            "only receive")


def _pid_in(path: Path) -> str | None:
    try:
        text = path.read_bytes()[:32].decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


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
        raise SenderLockHeld(_held_message(holder)) from None
    except BaseException:
        os.close(fd)
        raise
