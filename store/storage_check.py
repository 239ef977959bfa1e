"""Can the writer store a webhook now? A writer job that answers without storing anything.

/healthz (engine/healthz.py) must answer 503 whenever a webhook would. A webhook fails when the
writer is down (the caller sees that without a job), when the write lock is held elsewhere (this
job waits out the same busy timeout inside the group's BEGIN IMMEDIATE), when the connection
cannot write (a file opened read-only, a read-only file system: a write attempt, rolled back,
finds it) and when there is no room to grow (free space of the file system, and SQLite's own
page limit).
"""

from __future__ import annotations

import errno
import os
import sqlite3

# Below this much room, /healthz says "disk full": about one maximum-size webhook (1 MiB of JSON
# turns into less than that in rows). A small webhook may still fit; a load balancer should stop
# sending before the first one is refused, not after.
MIN_FREE_BYTES = 1024 * 1024


class NoRoom(OSError):
    """Less room than MIN_FREE_BYTES for the database to grow: NoRoom(errno.ENOSPC, why).

    No __init__ of its own: the exception crosses back from the writer process by pickle, which
    rebuilds it from OSError's (errno, strerror).
    """


def check_storage(conn: sqlite3.Connection, min_free_bytes: int = MIN_FREE_BYTES) -> str:
    """Raise what a webhook's write would meet now; 'ok' otherwise. Writes nothing that stays."""
    # A write attempt that is rolled back: the header's user_version set to its own value. On a
    # connection SQLite opened read-only this raises SQLITE_READONLY, as a webhook's insert would.
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute("SAVEPOINT smsdesk_health")
    try:
        conn.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        conn.execute("ROLLBACK TO smsdesk_health")
        conn.execute("RELEASE smsdesk_health")
    page_size, pages, free_pages, max_pages = (
        conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("page_size", "page_count", "freelist_count", "max_page_count"))
    if (max_pages - pages + free_pages) * page_size < min_free_bytes:
        raise NoRoom(errno.ENOSPC, f"the database is at its page limit ({pages} of {max_pages} pages)")
    path = _main_file(conn)
    if path:
        stats = os.statvfs(os.path.dirname(path) or ".")
        free = stats.f_bavail * stats.f_frsize
        if free < min_free_bytes:
            raise NoRoom(errno.ENOSPC, f"{free} bytes free on the database's file system")
    return "ok"


def _main_file(conn: sqlite3.Connection) -> str:
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file or "")
    return ""
