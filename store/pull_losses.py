"""Pulls whose answer was lost or could not be read (table `pull_losses`, migration 13).

Infobip's inbox pull (GET /sms/1/inbox/reports) and its delivery-report pull (GET /sms/3/reports)
are read-once: a pull consumes what it returns. When the answer does not arrive (a timeout or a
connection dropped after the request went out) or cannot be read, what it held may be gone for
good, STOPs included, and only the operator can look for it (Infobip's web interface). The poller
(engine/poller.py) records each such pull here; the TUI shows the newest under the tab line and
/healthz names it. A row is a plain tuple (at, credential_id, credential, kind, reason) so that
it travels to the writer process pickled. At most KEEP_ROWS rows are kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from smsdesk.store.unreadable import insert_unreadable

KEEP_ROWS = 1000
SHOWN_FOR = timedelta(hours=48)  # Infobip keeps what it holds for 48 hours: worth looking for until then


class PullLoss(NamedTuple):
    id: int
    at: str  # when the pull was made (UTC)
    credential_id: int
    credential: str
    kind: str  # inbox | reports
    reason: str

    def recent(self, now: datetime | None = None) -> bool:
        """Younger than SHOWN_FOR (a time that cannot be read counts as recent)."""
        try:
            at = datetime.fromisoformat(self.at)
        except ValueError:
            return True
        return (now or datetime.now(UTC)) - at < SHOWN_FOR

    def describe(self) -> str:
        """One line for the operator (not made inert: callers that print it do)."""
        what = "inbound messages" if self.kind == "inbox" else "delivery reports"
        reason = self.reason if len(self.reason) <= 80 else self.reason[:79] + "…"
        return (f"A pull of {what} for {self.credential} lost its answer at {self.at[:19].replace('T', ' ')} UTC "
                f"({reason}): what it held is gone from Infobip's inbox; look for it in Infobip's web interface")


def record_pull_loss(conn: sqlite3.Connection, at: str, credential_id: int, credential: str, kind: str,
                     reason: str, unreadable: Sequence[Sequence[str]] = ()) -> int:
    """A writer job: note one pull whose answer was lost; returns its id. Keeps the newest KEEP_ROWS.
    `unreadable`: rows for unreadable_inbound (an inbox answer that cannot be read, its start kept)."""
    if unreadable:
        insert_unreadable(conn, unreadable)
    cursor = conn.execute(
        "INSERT INTO pull_losses (at, credential_id, credential, kind, reason) VALUES (?, ?, ?, ?, ?)",
        (at, credential_id, credential, kind, reason[:500]))
    row_id = int(cursor.lastrowid or 0)
    conn.execute("DELETE FROM pull_losses WHERE id <= ?", (row_id - KEEP_ROWS,))
    return row_id


def latest_pull_loss(conn: sqlite3.Connection) -> PullLoss | None:
    """The newest lost pull answer, or None (one keyed read: the TUI runs it when the data changes)."""
    row = conn.execute("SELECT id, at, credential_id, credential, kind, reason FROM pull_losses "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    return PullLoss(*row) if row else None


def recent_pull_loss(conn: sqlite3.Connection, now: datetime | None = None) -> PullLoss | None:
    """The newest lost pull answer if it is younger than SHOWN_FOR, else None."""
    loss = latest_pull_loss(conn)
    return loss if loss is not None and loss.recent(now) else None


def list_pull_losses(conn: sqlite3.Connection, limit: int = 50) -> list[PullLoss]:
    """The newest `limit` rows, newest first."""
    return [PullLoss(*row) for row in conn.execute(
        "SELECT id, at, credential_id, credential, kind, reason FROM pull_losses ORDER BY id DESC LIMIT ?",
        (limit,))]
