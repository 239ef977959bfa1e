"""The heartbeat: a running `smsdesk serve` records, through its writer, that it is alive and can
commit to this file (table `receiver_heartbeat`; read by store/queries.py for the TUI)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

# How often a running `smsdesk serve` records that it is alive (one row, one small commit).
HEARTBEAT_SECONDS = 30.0


def record_heartbeat(conn: sqlite3.Connection, pid: int = 0, at: datetime | None = None) -> str:
    """A writer job: `serve` is alive and its writer can commit to this file, now. Returns the time."""
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    conn.execute("INSERT INTO receiver_heartbeat (id, at, pid) VALUES (1, ?, ?) "
                 "ON CONFLICT (id) DO UPDATE SET at = excluded.at, pid = excluded.pid", (moment, pid))
    return moment
