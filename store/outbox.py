"""The outbox of automatic replies: what is due, and marking each row's fate.

Status flow: queued -> sent -> delivered | undeliverable | expired | rejected; or failed
(a permanent error from Infobip). A transient error keeps the row queued with a later
next_attempt_at, so a crash at any point leaves a row that is simply sent again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from store.db import utcnow

PERMANENT_FAILURE = "failed"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    credential_id: int
    our_message_id: str
    sender: str
    to_number: str
    text: str
    validity_period_hours: int
    callback_data: str
    principal_entity_id: str
    content_template_id: str
    attempts: int


_COLUMNS = ("id, credential_id, our_message_id, sender, to_number, text, validity_period_hours, "
            "callback_data, principal_entity_id, content_template_id, attempts")


def due_replies(conn: sqlite3.Connection, limit: int = 100, now: float | None = None) -> list[OutboxRow]:
    moment = time.time() if now is None else now
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        (moment, limit),
    ).fetchall()
    return [OutboxRow(*row) for row in rows]


def backlog(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts by status: the TUI shows the queued backlog while Infobip is failing."""
    return {status: count for status, count in conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")}


def mark_sent(conn: sqlite3.Connection, row_id: int, infobip_message_id: str, status_name: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'sent', infobip_message_id = ?, delivery_status = ?, attempts = attempts + 1, "
        "last_error = '', updated_at = ? WHERE id = ? AND status = 'queued'",
        (infobip_message_id, status_name, utcnow(), row_id),
    )


def mark_failed(conn: sqlite3.Connection, row_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, updated_at = ? "
        "WHERE id = ? AND status = 'queued'",
        (error[:500], utcnow(), row_id),
    )


def mark_retry(conn: sqlite3.Connection, row_id: int, error: str, next_attempt_at: float) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? "
        "WHERE id = ? AND status = 'queued'",
        (error[:500], next_attempt_at, utcnow(), row_id),
    )


# Infobip's status group -> our reply status.
_GROUP_STATUS = {
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "undeliverable",
    "EXPIRED": "expired",
    "REJECTED": "rejected",
    "PENDING": "sent",
    "ACCEPTED": "sent",
}


def apply_delivery_report(conn: sqlite3.Connection, message_id: str, group_name: str, detail: str) -> bool:
    """Record a delivery report; matches Infobip's id or ours (we send ours as messageId)."""
    status = _GROUP_STATUS.get(group_name.upper(), "sent")
    cursor = conn.execute(
        "UPDATE outbox SET status = CASE WHEN status IN ('sent', 'queued') OR ? != 'sent' THEN ? ELSE status END, "
        "delivery_status = ?, delivery_detail = ?, updated_at = ? "
        "WHERE infobip_message_id = ? OR our_message_id = ?",
        (status, status, group_name, detail[:500], utcnow(), message_id, message_id),
    )
    return cursor.rowcount > 0


def apply_delivery_reports(conn: sqlite3.Connection, reports: list[tuple[str, str, str]]) -> int:
    """Apply a webhook's reports ([(messageId, groupName, detail)]); returns how many matched a reply."""
    return sum(apply_delivery_report(conn, mid, group, detail) for mid, group, detail in reports)
