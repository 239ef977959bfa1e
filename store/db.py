"""Opening the one SQLite file: private file modes, WAL, durable writes, migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from smsdesk.store.paths import prepare_private_file
from smsdesk.store.schema import LATEST_VERSION, MIGRATIONS

BUSY_TIMEOUT_MS = 5000


def utcnow() -> str:
    """ISO-8601 UTC with milliseconds: sorts as text, parses with fromisoformat."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path | str, *, migrate: bool = True, upto: int | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) the database, ready for use from the calling thread.

    Autocommit mode: every write path opens its own BEGIN IMMEDIATE via :func:`transaction`,
    so we control exactly what commits together.
    """
    db_path = Path(path)
    prepare_private_file(db_path)
    conn = sqlite3.connect(
        str(db_path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # A new file gives the space of purged rows back (store/retention.py). Only an empty file (before
    # its first table, and before WAL) takes the setting; an older one keeps its mode (purge
    # --vacuum), and a file that cannot be written is not written to here.
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk before we acknowledge anything to Infobip.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    if migrate:
        apply_migrations(db, upto=upto)
    prepare_private_file(db_path)  # WAL side files now exist: keep them private too
    return db


def connect_reader(path: Path | str, *, timeout: float | None = None) -> sqlite3.Connection:
    """A connection for reads only, to a database that is already at this smsdesk's schema.

    Two statements instead of `connect`'s dozen and no file-mode syscalls: a reader in a TUI
    worker thread hands the GIL back and forth with the UI thread at every one of them, and
    while the UI paints each hand-back can wait out a switch interval. WAL mode is a
    property of the file; `synchronous` and foreign keys only matter to writers.
    Anything unusual (no file yet, an older schema to migrate) falls back to `connect`.
    `timeout`: how long a lock may keep it waiting (default: the busy timeout); the TUI sets it.
    """
    db_path = Path(path)
    wait = BUSY_TIMEOUT_MS / 1000 if timeout is None else timeout
    try:
        conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None,
                               check_same_thread=False, timeout=wait)
    except sqlite3.OperationalError:
        return connect(db_path).conn  # no file yet: create it, private, and migrate
    try:
        (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):  # locked, unreadable: the caller reports it
            conn.close()
            raise
        version = None  # an empty file: `connect` creates the schema
    except sqlite3.DatabaseError:
        conn.close()  # not a database at all
        raise
    if version == LATEST_VERSION:
        return conn
    conn.close()
    return connect(db_path).conn


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def schema_version(db: sqlite_utils.Database) -> int:
    exists = db.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not exists:
        return 0
    row = db.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def apply_migrations(db: sqlite_utils.Database, upto: int | None = None) -> int:
    """Bring the schema forward to `upto` (default: latest). Returns the resulting version.

    Checks without a lock first: readers (every TUI worker) must not take the write lock
    just to learn that there is nothing to do.
    """
    target = LATEST_VERSION if upto is None else upto
    current = schema_version(db)
    if current > LATEST_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this smsdesk ({LATEST_VERSION}); upgrade smsdesk"
        )
    if current >= target:
        return current
    with transaction(db) as conn:
        # A SQLite file of some other program (tables, but no schema_version) is not ours to add to.
        has_version, tables = conn.execute(
            "SELECT COALESCE(SUM(name = 'schema_version'), 0), COUNT(*) FROM sqlite_master "
            "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()
        if tables and not has_version:
            raise RuntimeError("not an smsdesk database (it has tables but no schema_version)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        # Re-read under the lock: another process may have migrated in between.
        current = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])
        for migration in MIGRATIONS:
            if current < migration.version <= target:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, utcnow()),
                )
                current = migration.version
    return current


def data_version(db: sqlite_utils.Database) -> int:
    """Changes when another connection commits: a cheap 'anything new?' probe for live views."""
    return int(db.execute("PRAGMA data_version").fetchone()[0])
