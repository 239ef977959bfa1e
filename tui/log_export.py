"""Export what the log shows (its filter) from the TUI: JSON Lines, the rows and keys of
`smsdesk export messages --format jsonl`, oldest first. Runs on a data-service thread."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from smsdesk.store.queries import MessageFilter, iter_message_export


def export_file_name(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"smsdesk-messages-{moment}.jsonl"


def export_messages(conn: sqlite3.Connection, filters: MessageFilter, path: Path) -> int:
    """Write the matching messages to `path` (0600, never over an existing file); the count."""
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for row in iter_message_export(conn, filters):
            # ensure_ascii: control characters and escapes are written as \\u escapes, inert.
            out.write(json.dumps(row, ensure_ascii=True) + "\n")
            count += 1
    return count
