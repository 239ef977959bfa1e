"""Exports from the TUI, on a data-service thread: what the log shows (its filter) as JSON Lines,
the rows and bytes of `smsdesk export messages --format jsonl`, oldest first; and one number's
evidence record, the bytes of `smsdesk consent evidence --json`. Both written by
usecases/exports.py, as the CLI writes them."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from smsdesk.store.consent_history import evidence
from smsdesk.store.queries import MessageFilter, iter_message_export
from smsdesk.usecases.exports import inert_json, write_jsonl


def _new_private_file(path: Path) -> TextIO:
    """`path` opened for writing, 0600, never over an existing file."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8")


def export_file_name(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"smsdesk-messages-{moment}.jsonl"


def export_messages(conn: sqlite3.Connection, filters: MessageFilter, path: Path) -> int:
    """Write the matching messages to `path` (0600, never over an existing file); the count."""
    with _new_private_file(path) as out:
        return write_jsonl(iter_message_export(conn, filters), out)


def evidence_file_name(number: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c for c in number if c.isalnum()) or "number"  # a name stored as received may hold anything
    return f"smsdesk-evidence-{safe}-{moment}.json"


def export_evidence(conn: sqlite3.Connection, sandbox: str, number: str, path: Path) -> str:
    """Write the number's evidence record to `path` (0600, never over an existing file); its digest."""
    record = evidence(conn, sandbox, number)
    with _new_private_file(path) as out:
        out.write(inert_json(record, indent=2) + "\n")
    return str(record["digest"])
