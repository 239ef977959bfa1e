"""Storing inbound messages: the decision, the consent change, the attributes and the queued
reply of one message commit together, and a messageId seen before changes nothing."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from store.credentials import list_credentials_conn
from store.db import utcnow
from store.models import StoredCredential
from store.rules import Action, Decision, decide, keyword_index


@dataclass(frozen=True)
class InboundMessage:
    message_id: str  # Infobip's: the idempotency key
    from_number: str  # E.164 when it parsed as a number, else as received
    to_number: str
    text: str
    received_at: str  # ISO-8601 UTC
    source: str = "forward"  # forward | pull | demo


@dataclass(frozen=True)
class StoredOutcome:
    message_id: str
    row_id: int | None  # None: a duplicate, nothing written
    action: str
    reply_id: int | None


class RouteTable:
    """Credentials by inbound number, reloaded only when the credentials table changed."""

    def __init__(self) -> None:
        self._fingerprint: tuple[object, ...] | None = None
        self._routes: dict[str, tuple[StoredCredential, dict]] = {}

    def refresh(self, conn: sqlite3.Connection) -> None:
        fingerprint = tuple(conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(version), 0), COALESCE(MAX(id), 0), MAX(updated_at) "
            "FROM credentials").fetchone())
        if fingerprint == self._fingerprint:
            return
        self._routes = {
            cred.inbound_number: (cred, keyword_index(cred))
            for cred in list_credentials_conn(conn) if cred.inbound_number
        }
        self._fingerprint = fingerprint

    def lookup(self, to_number: str) -> tuple[StoredCredential | None, dict | None]:
        return self._routes.get(to_number, (None, None))


def store_messages(conn: sqlite3.Connection, routes: RouteTable,
                   messages: Sequence[InboundMessage]) -> list[StoredOutcome]:
    """Apply the rules to each message and write the results. Call inside a transaction.

    Lookups are done once per batch (which ids exist, the consent of every sender) and profile
    touches are written with one executemany, so a 100-message batch costs about one INSERT
    per message; consent changes inside the batch are carried forward in `consents`.
    """
    routes.refresh(conn)
    seen = _existing_ids(conn, [m.message_id for m in messages])
    consents = _consents_of(conn, {m.from_number for m in messages})
    profiles: dict[tuple[str, str], tuple[str, str]] = {}
    now = utcnow()
    outcomes = []
    for message in messages:
        if message.message_id in seen:
            outcomes.append(StoredOutcome(message.message_id, None, "duplicate", None))
            continue
        seen.add(message.message_id)
        outcomes.append(_store_one(conn, routes, message, consents, profiles, now))
    if profiles:
        conn.executemany(
            "INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sandbox, number) DO UPDATE SET "
            "first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen)",
            [(sandbox, number, first, last) for (sandbox, number), (first, last) in profiles.items()],
        )
    return outcomes


_CHUNK = 500  # stays under SQLite's bound-parameter limit


def _existing_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(r[0] for r in conn.execute(f"SELECT message_id FROM messages WHERE message_id IN ({marks})",
                                                chunk))
    return found


def _consents_of(conn: sqlite3.Connection, numbers: set[str]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    ordered = sorted(numbers)
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for sandbox, number, consent in conn.execute(
                f"SELECT sandbox, number, consent FROM consent WHERE number IN ({marks})", chunk):
            found[(sandbox, number)] = consent
    return found


def _store_one(conn: sqlite3.Connection, routes: RouteTable, msg: InboundMessage,
               consents: dict[tuple[str, str], str], profiles: dict[tuple[str, str], tuple[str, str]],
               now: str) -> StoredOutcome:
    cred, index = routes.lookup(msg.to_number)
    sandbox = cred.sandbox if cred else ""
    before = consents.get((sandbox, msg.from_number), "") if cred else ""
    decision = decide(msg.text, cred, before, index)
    row_id = int(conn.execute(
        "INSERT INTO messages (message_id, received_at, stored_at, credential_id, credential, sandbox, "
        "from_number, to_number, text, normalized, action, keyword, rule, consent_before, consent_after, source) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (msg.message_id, msg.received_at, now, cred.id if cred else None, cred.name if cred else "",
         sandbox, msg.from_number, msg.to_number, msg.text, decision.normalized, decision.action,
         decision.keyword, decision.rule, decision.consent_before, decision.consent_after, msg.source),
    ).lastrowid or 0)
    if cred is None:
        return StoredOutcome(msg.message_id, row_id, decision.action, None)
    key = (sandbox, msg.from_number)
    first, last = profiles.get(key, (msg.received_at, msg.received_at))
    profiles[key] = (min(first, msg.received_at), max(last, msg.received_at))
    if decision.consent_changed:
        consents[key] = decision.consent_after
        record_consent(conn, sandbox, msg.from_number, decision.consent_before, decision.consent_after,
                       row_id, decision.rule, now)
    if decision.attribute:
        conn.execute(
            "INSERT INTO profile_attributes (sandbox, number, name, first_at, last_at, count) "
            "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (sandbox, number, name) "
            "DO UPDATE SET last_at = excluded.last_at, count = count + 1",
            (sandbox, msg.from_number, decision.attribute, msg.received_at, msg.received_at),
        )
    reply_id = _queue_reply(conn, cred, msg, decision, row_id, now) if decision.reply_text else None
    if reply_id is not None:
        conn.execute("UPDATE messages SET reply_id = ? WHERE id = ?", (reply_id, row_id))
    return StoredOutcome(msg.message_id, row_id, decision.action, reply_id)


def record_consent(conn: sqlite3.Connection, sandbox: str, number: str, old: str, new: str,
                   message_row_id: int | None, reason: str, at: str) -> None:
    """Set the current consent and append the ledger entry that explains it, together."""
    conn.execute(
        "INSERT INTO consent (sandbox, number, consent, changed_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (sandbox, number) DO UPDATE SET consent = excluded.consent, changed_at = excluded.changed_at",
        (sandbox, number, str(new), at),
    )
    conn.execute(
        "INSERT INTO consent_ledger (at, sandbox, number, old, new, message_row_id, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, sandbox, number, str(old), str(new), message_row_id, reason),
    )


def _queue_reply(conn: sqlite3.Connection, cred: StoredCredential, msg: InboundMessage,
                 decision: Decision, row_id: int, now: str) -> int:
    # Our own messageId goes to Infobip with the send, so a retried send is recognisable there.
    cursor = conn.execute(
        "INSERT INTO outbox (message_row_id, credential_id, our_message_id, sender, to_number, text, "
        "validity_period_hours, callback_data, principal_entity_id, content_template_id, status, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
        (row_id, cred.id, f"smsdesk-{uuid.uuid4().hex}", cred.reply_sender, msg.from_number,
         decision.reply_text, cred.validity_period_hours, cred.callback_data, cred.principal_entity_id,
         cred.content_template_id, now, now),
    )
    return int(cursor.lastrowid or 0)


__all__ = ["Action", "InboundMessage", "RouteTable", "StoredOutcome", "record_consent", "store_messages"]
