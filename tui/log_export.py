"""Exports from the TUI, on a data-service thread: what the log shows (its filter) as JSON Lines,
the rows and keys of `smsdesk export messages --format jsonl`, oldest first; and one number's
evidence record, the JSON of `smsdesk consent evidence --json`."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from smsdesk.store.consent_history import evidence
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


def evidence_file_name(number: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c for c in number if c.isalnum()) or "number"  # a name stored as received may hold anything
    return f"smsdesk-evidence-{safe}-{moment}.json"


def export_evidence(conn: sqlite3.Connection, sandbox: str, number: str, path: Path) -> str:
    """Write the number's evidence record to `path` (0600, never over an existing file); its digest."""
    record = evidence(conn, sandbox, number)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=True, indent=2) + "\n")
    return str(record["digest"])
