"""The review queue: near-miss opt-outs (store/fuzzy.py) waiting for an operator's decision.

A decision is evidence like a keyword: it goes to the consent ledger with the operator (the OS
user) and the near-miss message as its cause, in the transaction that closes the review row.
An opt-out follows "Consent by time" (docs/architecture.md) with the message's receivedAt:
`changed` (consent becomes n, queued replies are cancelled, the opt-out confirmation is queued),
`reaffirmed` (already n), or `overruled` when the number expressed a newer wish after the near
miss (consent kept: the newer wish stands). A dismissal is a `dismissed` entry that repeats the
consent in force and changes nothing.
"""

from __future__ import annotations

import getpass
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlite_utils

from smsdesk.store.credentials import find_credential_by_id_conn
from smsdesk.store.db import transaction, utcnow
from smsdesk.store.errors import NotFoundError, StoreError
from smsdesk.store.outbox import cancel_for_opt_outs

Decision = Literal["opt-out", "dismiss"]
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


def operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers: the ledger still records something
        return "unknown"


_COLUMNS = ("id, number, sandbox, credential, text, received_at, status, keyword, message_row_id, resolved_by, "
            "resolved_at")


def list_reviews(conn: sqlite3.Connection, *, status: str = "open", limit: int = 1000) -> list[ReviewItem]:
    """Oldest first: the near miss that has waited longest is decided first."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    rows = conn.execute(f"SELECT {_COLUMNS} FROM review_queue {where} ORDER BY received_at, id LIMIT ?",
                        (*params, limit)).fetchall()
    return [ReviewItem(*row) for row in rows]


def count_open(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM review_queue WHERE status = 'open'").fetchone()[0])


def resolve(db: sqlite_utils.Database, review_id: int, decision: Decision, by: str | None = None) -> Resolution:
    """Close review `review_id` with `decision`, writing the ledger entry in the same transaction."""
    who = by or operator()
    with transaction(db) as conn:
        row = conn.execute(f"SELECT {_COLUMNS}, credential_id FROM review_queue WHERE id = ?",
                           (review_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no review #{review_id}")
        item, credential_id = ReviewItem(*row[:-1]), row[-1]
        if item.status != "open":
            raise AlreadyResolved(f"review #{review_id} is already resolved ({item.status} by {item.resolved_by})")
        now = utcnow()
        current = conn.execute("SELECT consent, received_at FROM consent WHERE sandbox = ? AND number = ?",
                               (item.sandbox, item.number)).fetchone()
        consent, in_force_since = (current[0], current[1]) if current else ("", "")
        if decision == "dismiss":
            effect, new, note = "dismissed", consent, "dismissed: consent unchanged"
        elif item.received_at < in_force_since:
            effect, new = "overruled", "n"
            note = ("already opted out" if consent == "n" else
                    f"not applied: the number expressed a newer wish ({consent or 'none'}, received "
                    f"{in_force_since}) after this message; consent kept")
        elif consent == "n":
            effect, new, note = "reaffirmed", "n", "already opted out: recorded as reaffirmed"
        else:
            effect, new, note = "changed", "n", "opted out"
        what = "dismissed the near miss" if decision == "dismiss" else "opted the number out"
        reason = f"review #{review_id}: operator {who} {what} (message #{item.message_row_id}: {item.text[:80]!r})"
        ledger_id = int(conn.execute(
            "INSERT INTO consent_ledger (at, sandbox, number, old, new, message_row_id, reason, received_at, effect, "
            "operator) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, item.sandbox, item.number, consent, new, item.message_row_id, reason, item.received_at, effect,
             who)).lastrowid or 0)
        if effect in ("changed", "reaffirmed"):
            conn.execute(
                "INSERT INTO consent (sandbox, number, consent, changed_at, received_at) VALUES (?, ?, 'n', ?, ?) "
                "ON CONFLICT (sandbox, number) DO UPDATE SET consent = 'n', changed_at = excluded.changed_at, "
                "received_at = excluded.received_at", (item.sandbox, item.number, now, item.received_at))
            boundary = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM outbox").fetchone()[0]
            cancel_for_opt_outs(conn, [(f"the number was opted out by review #{review_id} before the reply was sent",
                                        item.sandbox, item.number, boundary)])
            if effect == "changed":
                _queue_confirmation(conn, credential_id, item, now)
        status = "dismissed" if decision == "dismiss" else "opted-out"
        conn.execute("UPDATE review_queue SET status = ?, resolved_at = ?, resolved_by = ?, ledger_id = ? WHERE id = ?",
                     (status, now, who, ledger_id, review_id))
    done = ReviewItem(**(asdict(item) | {"status": status, "resolved_by": who, "resolved_at": now}))
    return Resolution(done, effect, ledger_id, note)


def _queue_confirmation(conn: sqlite3.Connection, credential_id: int | None, item: ReviewItem, now: str) -> None:
    """The opt-out confirmation, as a STOP would have got (kind opt-out: allowed to an opted-out number)."""
    cred = find_credential_by_id_conn(conn, credential_id) if credential_id is not None else None
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
