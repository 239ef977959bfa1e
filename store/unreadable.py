"""Inbound results that could not be read, kept raw for the operator (table `unreadable_inbound`,
migration 12) instead of refusing their neighbours: a STOP among them must be stored.

Rows are written by `store_inbound` in the transaction that stores their readable neighbours
(so the webhook's 200, or the pulled batch's removal from the spool, comes after both), and,
for a body that is not a batch at all, alone. A row is plain tuple `(at, source, reason, raw)`:
it travels to the writer process pickled.

A result delivered again (Infobip retries a batch answered 500, a pulled batch is stored again
after a stop) is recorded once: an identical row (same source, reason and raw) among the last
`DEDUPE_WINDOW` rows is not written again. Looking further back would read a table that grows.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

MAX_RAW_CHARS = 4000  # of the result's JSON that is kept
DEDUPE_WINDOW = 1000  # rows looked at for an identical one
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
UnreadableRow = tuple[str, str, str, str]  # (at, source, reason, raw)


class UnreadableInbound(NamedTuple):
    id: int
    at: str  # when it arrived (UTC)
    source: str  # forward (a webhook) | pull (a pulled batch)
    reason: str  # results[2].receivedAt: must be an ISO-8601 time ...
    raw: str  # its JSON, the first MAX_RAW_CHARS characters

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def raw_json(value: Any, limit: int = MAX_RAW_CHARS) -> str:
    """`value` as JSON, its first `limit` characters; lone surrogates (which SQLite cannot store
    as UTF-8) written as JSON escapes, so the text stays what was received."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # not from json.loads; kept as Python shows it
        text = repr(value)
    text = text[:limit]
    if not text.isascii() and _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)[:limit]
    return text


def insert_unreadable(conn: sqlite3.Connection, rows: Sequence[Sequence[str]]) -> int:
    """Write the rows not already among the last DEDUPE_WINDOW rows; returns how many were written.
    Call inside a write transaction (or let the writer run it as a job)."""
    written = 0
    for at, source, reason, raw in rows:
        cursor = conn.execute(
            """INSERT INTO unreadable_inbound (at, source, reason, raw)
               SELECT ?, ?, ?, ? WHERE NOT EXISTS (
                   SELECT 1 FROM unreadable_inbound
                   WHERE id > (SELECT COALESCE(MAX(id), 0) FROM unreadable_inbound) - ?
                     AND source = ? AND reason = ? AND raw = ?)""",
            (at, source, reason, raw, DEDUPE_WINDOW, source, reason, raw))
        written += cursor.rowcount
    return written


def list_unreadable(conn: sqlite3.Connection, limit: int = 50) -> list[UnreadableInbound]:
    """The newest `limit` rows, newest first."""
    found = conn.execute("SELECT id, at, source, reason, raw FROM unreadable_inbound ORDER BY id DESC LIMIT ?",
                         (limit,))
    return [UnreadableInbound(*row) for row in found]


def count_unreadable(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM unreadable_inbound").fetchone()[0])
