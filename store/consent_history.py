"""The operator's questions about consent: who changed consent between two times, how and why;
and one number's evidence record (every ledger entry with its cause, every reply with its
delivery reports, in order, with a digest over the record so a copy can be checked later).

Compliance (TCPA, CASL) puts the proof of consent and of its revocation on the sender: these are
what an operator hands over. Reads only.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

# A history row: one ledger entry that moved consent (or recorded an operator's decision), with its
# cause. Columns in this order in exports.
HISTORY_COLUMNS = ("ledger_id", "at", "received_at", "sandbox", "number", "old", "new", "effect", "cause",
                   "wish", "operator", "reason", "message_id", "message_received_at", "text")
_HISTORY = """SELECT l.id, l.at, l.received_at, l.sandbox, l.number, l.old, l.new, l.effect,
    CASE WHEN l.cause <> '' THEN l.cause WHEN l.effect = 'expired' THEN 'expiry'
         WHEN l.operator <> '' THEN 'operator' ELSE 'keyword' END,
    l.wish, l.operator, l.reason, COALESCE(m.message_id, ''), COALESCE(m.received_at, ''), COALESCE(m.text, '')
    FROM consent_ledger l LEFT JOIN messages m ON m.id = l.message_row_id"""


def consent_changes(conn: sqlite3.Connection, *, since: str = "", until: str = "", consent: str | None = None,
                    sandbox: str = "", number: str = "", current: str | None = None, attribute: str = "",
                    newest_first: bool = False, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Ledger entries that moved consent (changed, expired) or recorded an operator's opt-out,
    timed by the wish they record (`received_at`: a message's time, the operator's, the expiry's),
    in [since, until), oldest first; `consent`: only those that ended at it ('' for none).

    Profiles' filter narrows the same rows further (`smsdesk export consent` uses none of these):
    `number`, part of the number; `current`, the consent in force now ('' for none); `attribute`,
    numbers that sent this custom keyword."""
    where, params = _history_where(since, until, consent, sandbox, number, current, attribute)
    order = "DESC" if newest_first else ""
    tail = " LIMIT ?" if limit is not None else ""
    cursor = conn.execute(f"{_HISTORY} WHERE {where} ORDER BY l.received_at {order}, l.id {order}{tail}",
                          [*params, limit] if limit is not None else params)
    for row in cursor:
        yield dict(zip(HISTORY_COLUMNS, row, strict=True))


def count_consent_changes(conn: sqlite3.Connection, *, since: str = "", until: str = "", consent: str | None = None,
                          sandbox: str = "", number: str = "", current: str | None = None,
                          attribute: str = "") -> tuple[int, int]:
    """How many entries `consent_changes` yields for these filters, and for how many numbers."""
    where, params = _history_where(since, until, consent, sandbox, number, current, attribute)
    entries, numbers = conn.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT l.sandbox || char(0) || l.number) FROM consent_ledger l WHERE {where}",
        params).fetchone()
    return int(entries), int(numbers)


def _history_where(since: str, until: str, consent: str | None, sandbox: str, number: str, current: str | None,
                   attribute: str) -> tuple[str, list[Any]]:
    clauses = ["(l.effect IN ('changed', 'expired') OR (l.cause = 'operator' AND l.effect = 'reaffirmed'))"]
    params: list[Any] = []
    if since:
        clauses.append("l.received_at >= ?")
        params.append(since)
    if until:
        clauses.append("l.received_at < ?")
        params.append(until)
    if consent is not None:
        clauses.append("l.new = ?")
        params.append(consent)
    if sandbox:
        clauses.append("l.sandbox = ?")
        params.append(sandbox)
    if number:
        clauses.append("l.number LIKE ?")
        params.append(f"%{number}%")
    if current is not None:
        clauses.append("COALESCE((SELECT c.consent FROM consent c WHERE c.sandbox = l.sandbox "
                       "AND c.number = l.number), '') = ?")
        params.append(current)
    if attribute:
        clauses.append("EXISTS (SELECT 1 FROM profile_attributes a WHERE a.sandbox = l.sandbox "
                       "AND a.number = l.number AND a.name = ? COLLATE NOCASE)")
        params.append(attribute)
    return " AND ".join(clauses), params


def sandboxes_of(conn: sqlite3.Connection, number: str) -> list[str]:
    """The sandboxes in which `number` has a consent record or a profile."""
    return [row[0] for row in conn.execute(
        "SELECT sandbox FROM consent WHERE number = ? UNION SELECT sandbox FROM profiles WHERE number = ? "
        "ORDER BY 1", (number, number))]


def evidence(conn: sqlite3.Connection, sandbox: str, number: str) -> dict[str, Any]:
    """One number's evidence record in one sandbox, with `digest`: SHA-256 over the record's
    canonical JSON (sorted keys, no spaces, UTF-8) without the digest itself."""
    consent = conn.execute("SELECT consent, received_at, cause FROM consent WHERE sandbox = ? AND number = ?",
                           (sandbox, number)).fetchone()
    ledger = [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in conn.execute(
        f"{_HISTORY} WHERE l.sandbox = ? AND l.number = ? ORDER BY l.id", (sandbox, number))]
    replies = []
    for reply_id, our_id, infobip_id, kind, text, status, created, updated, last_error, credential in conn.execute(
            "SELECT id, our_message_id, infobip_message_id, kind, text, status, created_at, updated_at, last_error, "
            "credential_name FROM outbox WHERE to_number = ? AND sandbox = ? ORDER BY id", (number, sandbox)):
        reports = [{"group": group, "detail": detail, "done_at": done_at, "received_at": received_at}
                   for group, detail, done_at, received_at in conn.execute(
                       "SELECT group_name, detail, done_at, received_at FROM delivery_reports WHERE outbox_id = ? "
                       "ORDER BY id", (reply_id,))]
        replies.append({"reply_id": reply_id, "our_message_id": our_id, "infobip_message_id": infobip_id,
                        "kind": kind, "text": text, "status": status, "queued_at": created, "updated_at": updated,
                        "last_error": last_error, "credential": credential, "delivery_reports": reports})
    record: dict[str, Any] = {
        "sandbox": sandbox, "number": number,
        "consent": {"value": consent[0], "since": consent[1], "cause": consent[2]} if consent else None,
        "ledger": ledger, "replies": replies,
    }
    record["digest"] = "sha256:" + digest_of(record)
    return record


def digest_of(record: dict[str, Any]) -> str:
    """The hex SHA-256 of a record's canonical JSON, its `digest` left out: check a copy with it."""
    body = {key: value for key, value in record.items() if key != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
