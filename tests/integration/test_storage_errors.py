"""The one error classifier (store/errors.py, `classify`), on errors SQLite and the OS really raise
(a held lock, a file opened read-only, a missing directory, a page limit, a file that is no
database, a damaged one), and what each caller says for each kind: /healthz, the CLI, the TUI."""

from __future__ import annotations

import errno
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smsdesk.cli.common import sqlite_error_line
from smsdesk.engine.healthz import storage_problem
from smsdesk.store.errors import DuplicateError, StorageTrouble, classify, error_name
from smsdesk.store.storage_check import NoRoom
from smsdesk.tui.workers import describe_error
from smsdesk.writer.jobs import WriterStopped


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except BaseException as exc:  # the error under test, whatever its class
        return exc
    raise AssertionError("no error was raised")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
    conn.execute("INSERT INTO t VALUES ('a', x'00')")
    conn.close()
    yield path


def locked(db: Path) -> BaseException:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        other = sqlite3.connect(db, isolation_level=None, timeout=0)
        return raised(lambda: other.execute("BEGIN IMMEDIATE"))
    finally:
        holder.rollback()
        holder.close()


def read_only(db: Path) -> BaseException:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, isolation_level=None)
    return raised(lambda: conn.execute("INSERT INTO t VALUES ('b', x'01')"))


def cannot_open(db: Path) -> BaseException:
    return raised(lambda: sqlite3.connect(db.parent / "missing" / "data.db").execute("SELECT 1"))


def page_limit(db: Path) -> BaseException:
    conn = sqlite3.connect(db, isolation_level=None)
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    return raised(lambda: conn.execute("INSERT INTO t VALUES ('big', zeroblob(1000000))"))


def not_a_database(db: Path) -> BaseException:
    junk = db.parent / "junk.db"
    junk.write_bytes(b"this is a text file, not a database" * 200)
    return raised(lambda: sqlite3.connect(junk).execute("SELECT * FROM sqlite_master"))


def damaged(db: Path) -> BaseException:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(db, "r+b") as file:  # the table's page (page 2) overwritten with garbage
        file.seek(page_size)
        file.write(b"\xff" * page_size)
    return raised(lambda: sqlite3.connect(db).execute("SELECT * FROM t").fetchall())


def no_such_table(db: Path) -> BaseException:
    return raised(lambda: sqlite3.connect(db).execute("SELECT * FROM nowhere"))


def duplicate_key(db: Path) -> BaseException:
    return raised(lambda: sqlite3.connect(db).execute("INSERT INTO t VALUES ('a', x'02')"))


def io_error(db: Path) -> BaseException:
    # No portable way to make a disk fail on demand: SQLite's own error, as sqlite3 hands it over.
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = 778  # type: ignore[attr-defined]
    exc.sqlite_errorname = "SQLITE_IOERR_WRITE"  # type: ignore[attr-defined]
    return exc


# (how the error is made, its class, its SQLite name (prefix), its kind, /healthz's line)
REAL_ERRORS = [
    (locked, sqlite3.OperationalError, "SQLITE_BUSY", StorageTrouble.BUSY, "database locked"),
    (read_only, sqlite3.OperationalError, "SQLITE_READONLY", StorageTrouble.READ_ONLY, "database not writable"),
    (cannot_open, sqlite3.OperationalError, "SQLITE_CANTOPEN", StorageTrouble.CANT_OPEN, "database not writable"),
    (page_limit, sqlite3.OperationalError, "SQLITE_FULL", StorageTrouble.FULL, "disk full"),
    (io_error, sqlite3.OperationalError, "SQLITE_IOERR", StorageTrouble.IO, "storage error"),
    (not_a_database, sqlite3.DatabaseError, "SQLITE_NOTADB", StorageTrouble.CORRUPT, "storage error"),
    (damaged, sqlite3.DatabaseError, "SQLITE_CORRUPT", StorageTrouble.CORRUPT, "storage error"),
    (no_such_table, sqlite3.OperationalError, "SQLITE_ERROR", StorageTrouble.OTHER, "storage error"),
    (duplicate_key, sqlite3.IntegrityError, "SQLITE_CONSTRAINT", None, "storage error"),
]


@pytest.mark.parametrize(("make", "cls", "name", "kind", "line"), REAL_ERRORS,
                         ids=[row[0].__name__ for row in REAL_ERRORS])
def test_each_real_sqlite_error_is_classified_by_what_failed(
        db: Path, make: Callable[[Path], BaseException], cls: type, name: str, kind: StorageTrouble | None,
        line: str) -> None:
    exc = make(db)
    assert type(exc) is cls
    assert exc.sqlite_errorname.startswith(name)  # type: ignore[attr-defined]
    assert classify(exc) is kind
    assert storage_problem(exc) == line
    assert error_name(exc) == exc.sqlite_errorname  # type: ignore[attr-defined]
    # As the writer process sends it back: pickled, then read in serve.
    assert classify(pickle.loads(pickle.dumps(exc))) is kind


@pytest.mark.parametrize(("exc", "kind", "line"), [
    (WriterStopped("the writer process is not running"), StorageTrouble.WRITER_DOWN, "writer down"),
    (NoRoom(errno.ENOSPC, "the database is at its page limit"), StorageTrouble.FULL, "disk full"),
    (OSError(errno.ENOSPC, "No space left on device"), StorageTrouble.FULL, "disk full"),
    (PermissionError(errno.EACCES, "Permission denied"), StorageTrouble.IO, "storage error"),
    (DuplicateError("name", "taken"), None, "storage error"),
    (ValueError("a bug in a job"), None, "storage error"),
])
def test_the_writer_and_the_os_are_classified_too(exc: BaseException, kind: StorageTrouble | None,
                                                  line: str) -> None:
    assert classify(exc) is kind
    assert storage_problem(exc) == line


def test_the_cli_names_a_held_lock_and_quotes_anything_else(db: Path) -> None:
    assert sqlite_error_line(locked(db)) == "database is locked (another process holds it); retry"  # type: ignore[arg-type]
    assert sqlite_error_line(no_such_table(db)) == "no such table: nowhere"  # type: ignore[arg-type]
    assert sqlite_error_line(not_a_database(db)) == "file is not a database"  # type: ignore[arg-type]


def test_the_tui_says_whether_the_database_could_not_be_read_or_failed(db: Path) -> None:
    assert describe_error(locked(db)) == "could not read the database: database is locked"
    assert describe_error(not_a_database(db)) == "database error: file is not a database"
    assert describe_error(duplicate_key(db)).startswith("database error: UNIQUE constraint failed")
    assert describe_error(PermissionError(errno.EACCES, "Permission denied")) == \
        "could not open the database: Permission denied"
    assert describe_error(DuplicateError("name", "taken")) == "name: taken"
