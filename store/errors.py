"""Errors the store raises, each with a message fit to show a user as is; and the one place that
says what kind of storage trouble an exception is (`classify`)."""

from __future__ import annotations

import enum
import errno
import sqlite3


class StoreError(Exception):
    """Base class: a user-facing problem with stored data."""


class NotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    """Optimistic concurrency: the row changed since it was read."""


class DuplicateError(StoreError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StorageUnreachable(RuntimeError):
    """The writer that owns the writes did not answer (writer/jobs.py, WriterStopped): whether the
    write was committed is not known."""


class StorageTrouble(enum.Enum):
    """What failed when the file, the disk or the writer failed, as opposed to a job that failed
    on its input. `line` is the short reason /healthz gives; kinds an operator fixes the same way
    share one."""

    WRITER_DOWN = "writer"
    BUSY = "busy"  # another connection holds the write lock
    READ_ONLY = "read-only"  # the file, its directory or the file system refuses writes
    CANT_OPEN = "cannot open"
    FULL = "full"  # the disk, or SQLite's page limit
    IO = "I/O"
    CORRUPT = "corrupt"  # a damaged file, or one that is not a database
    OTHER = "other"  # any other failure of SQLite or the OS (a missing table, too many files)

    @property
    def line(self) -> str:
        return _LINES[self]


_LINES = {
    StorageTrouble.WRITER_DOWN: "writer down",
    StorageTrouble.BUSY: "database locked",
    StorageTrouble.READ_ONLY: "database not writable",
    StorageTrouble.CANT_OPEN: "database not writable",
    StorageTrouble.FULL: "disk full",
    StorageTrouble.IO: "storage error",
    StorageTrouble.CORRUPT: "storage error",
    StorageTrouble.OTHER: "storage error",
}
# SQLite's primary result codes (the start of `sqlite_errorname`; extended codes add a suffix).
_BY_SQLITE_NAME = (
    ("SQLITE_BUSY", StorageTrouble.BUSY),
    ("SQLITE_LOCKED", StorageTrouble.BUSY),
    ("SQLITE_READONLY", StorageTrouble.READ_ONLY),
    ("SQLITE_PERM", StorageTrouble.READ_ONLY),
    ("SQLITE_CANTOPEN", StorageTrouble.CANT_OPEN),
    ("SQLITE_FULL", StorageTrouble.FULL),
    ("SQLITE_IOERR", StorageTrouble.IO),
)


def classify(exc: BaseException) -> StorageTrouble | None:
    """The kind of storage trouble `exc` is, or None: the job failed on its input (a constraint,
    a bug), so retrying it later will not help and the data is to blame.

    sqlite3 raises OperationalError for the codes of `_BY_SQLITE_NAME` and DatabaseError itself
    (no subclass) for a corrupt file or one that is not a database; the other subclasses
    (IntegrityError, ProgrammingError, ...) are failures of the job.
    """
    if isinstance(exc, StorageUnreachable):
        return StorageTrouble.WRITER_DOWN
    if isinstance(exc, OSError):
        return StorageTrouble.FULL if exc.errno == errno.ENOSPC else StorageTrouble.IO
    if type(exc) is sqlite3.DatabaseError:
        return StorageTrouble.CORRUPT
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    name = getattr(exc, "sqlite_errorname", None) or ""
    return next((kind for prefix, kind in _BY_SQLITE_NAME if name.startswith(prefix)), StorageTrouble.OTHER)


def error_name(exc: BaseException) -> str:
    """SQLite's name for the error (SQLITE_IOERR_WRITE), else the exception's class: for log lines."""
    return getattr(exc, "sqlite_errorname", None) or exc.__class__.__name__
