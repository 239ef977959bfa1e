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


# --- delivery reports ------------------------------------------------------------------------
#
# Reports arrive in any order (Infobip documents none; a webhook retry or a pull can bring an
# old one late), so a report only ever moves a reply forward. Ranks:
#   0 queued, sending (claimed, request in flight)
#   1 sent: Infobip has it (ACCEPTED or PENDING reports, the send answer)
#   2 final: DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED
# A report whose rank is not above the reply's moves neither `status` nor the shown
# `delivery_status`/`delivery_detail`: a PENDING after DELIVERED, or a second final report
# after a first, is recorded in `delivery_reports` and nothing else. Rows the sender settled
# itself (`failed`, `cancelled`) keep their status; their shown delivery status still moves
# forward, since a report proves the message went out after all.

# Infobip's status group -> our reply status.
_GROUP_STATUS = {
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "undeliverable",
    "EXPIRED": "expired",
    "REJECTED": "rejected",
    "PENDING": "sent",
    "ACCEPTED": "sent",
}
FINAL_GROUPS = frozenset(group for group, status in _GROUP_STATUS.items() if status != "sent")
_STATUS_RANK = {"queued": 0, "sending": 0, "sent": 1,
                **{status: 2 for status in _GROUP_STATUS.values() if status != "sent"}}
_SETTLED_BY_SENDER = frozenset({PERMANENT_FAILURE, "cancelled"})  # never moved by a report

# (messageId, groupName, 'NAME: description'[, doneAt]): what gateway.mo.parse_delivery_reports
# gives; plain tuples, so a batch travels to the writer process as it is.
Report = tuple[str, ...]


def report_rank(group_name: str) -> int:
    """A report's rank: 2 final, 1 anything else (ACCEPTED, PENDING, a group we do not know)."""
    return 2 if group_name.upper() in FINAL_GROUPS else 1


def _shown_rank(status: str, delivery_status: str) -> int:
    """Where a reply stands now. The status says it for rows a report can move; for the others
    (failed, cancelled) the shown delivery status does: a final group name, any other text
    (the send answer's status name, a PENDING report), or nothing yet."""
    if status in _STATUS_RANK:
        return _STATUS_RANK[status]
    if not delivery_status:
        return 0
    return report_rank(delivery_status)


def apply_delivery_report(conn: sqlite3.Connection, message_id: str, group_name: str, detail: str,
                          done_at: str = "") -> bool:
    """Record a delivery report and move its reply forward if it ranks above where the reply is.

    Matches Infobip's id or ours (we send ours as messageId). Returns whether a reply matched.
    """
    matches = conn.execute(
        "SELECT id, status, delivery_status FROM outbox WHERE infobip_message_id = ? OR our_message_id = ?",
        (message_id, message_id),
    ).fetchall()
    group = group_name.upper()
    detail = detail[:500]
    now = utcnow()
    for outbox_id, status, delivery_status in matches:
        rank = report_rank(group)
        applies = rank > _shown_rank(status, delivery_status)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO delivery_reports (outbox_id, message_id, group_name, detail, done_at, "
            "received_at, applied) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (outbox_id, message_id, group_name, detail, done_at, now, int(applies)),
        )
        if not applies or cursor.rowcount == 0:
            continue  # not newer than what is shown, or this very report was recorded before
        if status in _SETTLED_BY_SENDER:
            conn.execute("UPDATE outbox SET delivery_status = ?, delivery_detail = ?, updated_at = ? WHERE id = ?",
                         (group_name, detail, now, outbox_id))
        else:
            conn.execute(
                "UPDATE outbox SET status = ?, delivery_status = ?, delivery_detail = ?, updated_at = ? WHERE id = ?",
                (_GROUP_STATUS.get(group, "sent"), group_name, detail, now, outbox_id))
    return bool(matches)


def apply_delivery_reports(conn: sqlite3.Connection, reports: list[Report]) -> int:
    """The writer job for a batch of reports (a webhook's, or a pull's), in their order; returns
    how many matched a reply. Applying a batch twice changes nothing the first time did not."""
    return sum(apply_delivery_report(conn, *report) for report in reports)
