"""The review queue: near-miss opt-outs (domain/fuzzy.py) waiting for an operator's decision.

A decision is evidence like a keyword: it goes to the consent ledger with the operator (the OS
user) and the near-miss message as its cause, in the transaction that closes the review row.
An opt-out is an operator's opt-out (store/operator_opt_out.py) at the operator's time, always
applied: `changed` (consent becomes n, queued replies are cancelled, the opt-out confirmation is
queued) or `reaffirmed` (already n). A dismissal is a `dismissed` entry that repeats the consent
in force and changes nothing.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlite_utils

from smsdesk.domain.consent_decider import Effect
from smsdesk.store.credentials import find_credential_by_id
from smsdesk.store.db import transaction, utcnow
from smsdesk.store.errors import NotFoundError, StoreError
from smsdesk.store.operator_opt_out import record_dismissal, record_opt_out

# What an operator decides about a near miss (not domain/rules.py's Decision, the rules' verdict on a text).
ReviewChoice = Literal["opt-out", "dismiss"]
STATUSES = ("open", "opted-out", "dismissed")


@dataclass(frozen=True)
class ReviewItem:
    id: int
    number: str
    sandbox: str
    credential: str
    text: str
    received_at: str
    status: str
    keyword: str = ""
    message_row_id: int = 0
    resolved_by: str = ""
    resolved_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Resolution:
    item: ReviewItem
    effect: str  # the ledger's effect: changed, reaffirmed, overruled, dismissed
    ledger_id: int
    note: str  # one sentence for the operator


class AlreadyResolved(StoreError):
    pass


_COLUMNS = ("id, number, sandbox, credential, text, received_at, status, keyword, message_row_id, resolved_by, "
            "resolved_at")


def list_reviews(conn: sqlite3.Connection, *, status: str = "open", limit: int = 1000) -> list[ReviewItem]:
    """Oldest first: the near miss that has waited longest is decided first."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    rows = conn.execute(f"SELECT {_COLUMNS} FROM review_queue {where} ORDER BY received_at, id LIMIT ?",
                        (*params, limit)).fetchall()
    return [ReviewItem(*row) for row in rows]


def count_open(conn: sqlite3.Connection) -> int:
    return count_reviews(conn, status="open")


def count_reviews(conn: sqlite3.Connection, *, status: str = "open") -> int:
    """How many items `list_reviews` would list without its limit ('' = every status)."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    return int(conn.execute(f"SELECT COUNT(*) FROM review_queue {where}", params).fetchone()[0])


def review_page(conn: sqlite3.Connection, *, status: str = "open", limit: int = 1000) -> tuple[list[ReviewItem], int]:
    """The first `limit` items, oldest first, and how many there are in all (one read)."""
    return list_reviews(conn, status=status, limit=limit), count_reviews(conn, status=status)


def resolve(db: sqlite_utils.Database, review_id: int, choice: ReviewChoice, *, by: str) -> Resolution:
    """Close review `review_id` with `choice` by operator `by`, writing the ledger entry in the same
    transaction (usecases/review.py names the OS user)."""
    with transaction(db) as conn:
        row = conn.execute(f"SELECT {_COLUMNS}, credential_id FROM review_queue WHERE id = ?",
                           (review_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no review #{review_id}")
        item, credential_id = ReviewItem(*row[:-1]), row[-1]
        if item.status != "open":
            raise AlreadyResolved(f"review #{review_id} is already resolved ({item.status} by {item.resolved_by})")
        now = utcnow()
        what = "dismissed the near miss" if choice == "dismiss" else "opted the number out"
        reason = f"review #{review_id}: operator {by} {what} (message #{item.message_row_id}: {item.text[:80]!r})"
        record = record_dismissal if choice == "dismiss" else record_opt_out
        outcome = record(conn, item.sandbox, item.number, reason, by=by, now=now,
                         message_row_id=item.message_row_id)
        effect = outcome.entries[-1].effect
        ledger_id = int(conn.execute("SELECT MAX(id) FROM consent_ledger").fetchone()[0])
        if choice == "dismiss":
            note = "dismissed: consent unchanged"
        elif effect == Effect.CHANGED:
            note = "opted out"
            _queue_confirmation(conn, credential_id, item, now)
        else:
            note = "already opted out: recorded as reaffirmed"
        status = "dismissed" if choice == "dismiss" else "opted-out"
        conn.execute("UPDATE review_queue SET status = ?, resolved_at = ?, resolved_by = ?, ledger_id = ? WHERE id = ?",
                     (status, now, by, ledger_id, review_id))
    done = ReviewItem(**(asdict(item) | {"status": status, "resolved_by": by, "resolved_at": now}))
    return Resolution(done, effect, ledger_id, note)


def _queue_confirmation(conn: sqlite3.Connection, credential_id: int | None, item: ReviewItem, now: str) -> None:
    """The opt-out confirmation, as a STOP would have got (kind opt-out: allowed to an opted-out number)."""
    cred = find_credential_by_id(conn, credential_id) if credential_id is not None else None
    if cred is None or not cred.opt_out_message:
        return
    conn.execute(
        "INSERT INTO outbox (id, message_row_id, credential_id, our_message_id, sender, to_number, text, "
        "validity_period_hours, callback_data, principal_entity_id, content_template_id, status, created_at, "
        "updated_at, kind, sandbox, credential_name) "
        "VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM outbox), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, "
        "'opt-out', ?, ?)",
        (item.message_row_id, cred.id, f"smsdesk-{uuid.uuid4().hex}", cred.reply_sender, item.number,
         cred.opt_out_message, cred.validity_period_hours, cred.callback_data, cred.principal_entity_id,
         cred.content_template_id, now, now, cred.sandbox, cred.name))
