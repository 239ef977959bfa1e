"""Storing inbound messages: the decision, the consent change, the attributes and the queued
reply of one message commit together, and a messageId seen before changes nothing."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

from smsdesk.store.credentials import list_credentials_conn
from smsdesk.store.db import utcnow
from smsdesk.store.models import StoredCredential
from smsdesk.store.outbox import cancel_for_opt_outs
from smsdesk.store.rules import (
    Action,
    Consent,
    Decision,
    KeywordIndex,
    decide,
    keyword_index,
    older_than_consent,
    pending_expires_at,
)

# The actions whose keyword states a consent (and so are ordered by receivedAt).
_EXPRESSES_CONSENT = frozenset({Action.OPT_IN, Action.OPT_OUT, Action.DOUBLE_OPT_IN})


class InboundMessage(NamedTuple):
    """A tuple, so that a batch crosses to the writer process as cheaply as pickle allows."""

    message_id: str  # Infobip's: the idempotency key
    from_number: str  # E.164 when it parsed as a number, else as received
    to_number: str
    text: str
    received_at: str  # ISO-8601 UTC
    source: str = "forward"  # forward | pull | demo


class StoredOutcome(NamedTuple):
    message_id: str
    row_id: int | None  # None: a duplicate, nothing written
    action: str
    reply_id: int | None


class RouteTable:
    """Credentials by inbound number, reloaded only when the credentials table changed.

    Whether it changed is one keyed read for every webhook: `credentials_version`, which triggers
    bump at every insert, update and delete of a credential (schema 10), by any connection.
    """

    def __init__(self) -> None:
        self._fingerprint: object = None
        self._routes: dict[str, tuple[StoredCredential, KeywordIndex]] = {}

    def refresh(self, conn: sqlite3.Connection) -> None:
        # The row gone (deleted by hand): nothing tells a change any more, so reload every time.
        fingerprint = conn.execute("SELECT version FROM credentials_version WHERE id = 1").fetchone() or object()
        if fingerprint == self._fingerprint:
            return
        self._routes = {
            cred.inbound_number: (cred, keyword_index(cred))
            for cred in list_credentials_conn(conn) if cred.inbound_number
        }
        self._fingerprint = fingerprint

    def lookup(self, to_number: str) -> tuple[StoredCredential | None, KeywordIndex | None]:
        return self._routes.get(to_number, (None, None))


_routes_lock = threading.Lock()
# Per write connection (a strong reference: a closed connection's id cannot be reused while it
# is a key); the newest few are kept, as writers come and go in tests.
_routes_of_connection: OrderedDict[sqlite3.Connection, RouteTable] = OrderedDict()
OutcomeRow = tuple[str, int | None, str, int | None]  # a StoredOutcome as a plain tuple


def inbound_rows(messages: Sequence[InboundMessage]) -> list[tuple[str, ...]]:
    """What `store_inbound` takes: plain tuples pickle much cheaper than NamedTuples."""
    return [tuple(message) for message in messages]


def store_inbound(conn: sqlite3.Connection, messages: Sequence[Sequence[str]]) -> list[OutcomeRow]:
    """`store_messages` for webhooks and pulls, run by the writer (a job importable by name).

    Takes InboundMessage fields and returns StoredOutcome fields as plain tuples: the writer runs
    in another process, and plain tuples pickle much cheaper than objects, which on
    the batched path is the difference between the writer waiting for its input or not.
    """
    with _routes_lock:
        routes = _routes_of_connection.get(conn)
        if routes is None:
            routes = _routes_of_connection[conn] = RouteTable()
            while len(_routes_of_connection) > 8:
                _routes_of_connection.popitem(last=False)
        _routes_of_connection.move_to_end(conn)
    outcomes = store_messages(conn, routes, [InboundMessage._make(m) for m in messages])
    return [tuple(outcome) for outcome in outcomes]  # type: ignore[misc]


def store_messages(conn: sqlite3.Connection, routes: RouteTable,
                   messages: Sequence[InboundMessage]) -> list[StoredOutcome]:
    """Apply the rules to each message and write the results. Call inside a write transaction.

    The batch is decided first (pure), then written with one executemany per table. Row ids are
    assigned here, which is safe because the caller holds SQLite's write lock (BEGIN IMMEDIATE):
    that is what lets a message row name its reply and a ledger entry name its message without a
    round trip per row. Consent changes inside one batch are carried forward in `consents`.

    Consent follows Infobip's receivedAt, not arrival: a consent keyword older than the number's
    latest one is stored and kept in the ledger as overruled, changes nothing and gets no reply;
    a newer one that repeats the consent in force is kept as reaffirmed (it moves the number's
    latest wish forward in time). An opt-out cancels, in this transaction, what was queued for
    the number before it (docs/architecture.md, "Consent by time").
    """
    routes.refresh(conn)
    seen = _existing_ids(conn, [m.message_id for m in messages])
    consents = _consents_of(conn, {(cred.sandbox, m.from_number) for m in messages
                                   if (cred := routes.lookup(m.to_number)[0]) is not None})
    batch = _Batch(conn, utcnow())
    outcomes = []
    for message in messages:
        if message.message_id in seen:
            outcomes.append(StoredOutcome(message.message_id, None, "duplicate", None))
            continue
        seen.add(message.message_id)
        outcomes.append(batch.add(routes, message, consents))
    batch.write()
    return outcomes


class _Batch:
    """The rows one batch of messages turns into, written together by `write()`."""

    def __init__(self, conn: sqlite3.Connection, now: str) -> None:
        self.conn = conn
        self.now = now
        self.next_message_id, self.next_reply_id = conn.execute(
            "SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM messages), (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox)"
        ).fetchone()
        self.messages: list[tuple[object, ...]] = []
        self.replies: list[tuple[object, ...]] = []
        # (sandbox, number, old, new, message row id, rule, receivedAt, effect)
        self.consent_changes: list[tuple[str, str, str, str, int, str, str, str]] = []
        self.opt_outs: list[tuple[str, str, str, int]] = []  # (reason, sandbox, number, reply id boundary)
        self.attributes: list[tuple[str, str, str, str, str]] = []
        self.profiles: dict[tuple[str, str], tuple[str, str]] = {}
        self.per_action: dict[str, int] = {}  # this batch's messages by action, for the traffic counts
        self.reviews: list[tuple[object, ...]] = []  # near misses for the operator's review queue

    def add(self, routes: RouteTable, msg: InboundMessage,
            consents: dict[tuple[str, str], tuple[str, str]]) -> StoredOutcome:
        cred, index = routes.lookup(msg.to_number)
        sandbox = cred.sandbox if cred else ""
        key = (sandbox, msg.from_number)
        consent, changed_by = consents.get(key, ("", "")) if cred else ("", "")
        expired = False
        if cred is not None and consent == Consent.PENDING:
            expires_at = pending_expires_at(changed_by, cred.double_opt_in_expiry_days)
            if expires_at and msg.received_at >= expires_at:
                consent, changed_by = self._expire(key, cred.double_opt_in_expiry_days, changed_by, expires_at)
                consents[key] = (consent, changed_by)
                expired = True
        decision = decide(msg.text, cred, consent, index, pending_expired=expired)
        effect = ""  # what this message does to consent: '' nothing, else the ledger's effect
        if decision.action in _EXPRESSES_CONSENT:
            if msg.received_at >= changed_by:
                effect = "changed" if decision.consent_changed else "reaffirmed"
            elif decision.consent_changed:
                decision = older_than_consent(decision, changed_by)
                effect = "overruled"
        row_id = self.next_message_id
        self.next_message_id += 1
        reply_id = None
        if cred is not None:
            first, last = self.profiles.get(key, (msg.received_at, msg.received_at))
            self.profiles[key] = (min(first, msg.received_at), max(last, msg.received_at))
            if effect:
                if effect != "overruled":
                    consents[key] = (decision.consent_after, msg.received_at)
                self.consent_changes.append((sandbox, msg.from_number, decision.consent_before,
                                             decision.ledger_new, row_id, decision.rule, msg.received_at, effect))
            if effect in ("changed", "reaffirmed") and decision.consent_after == Consent.NO:
                self.opt_outs.append((f"the number opted out (message #{row_id}) before the reply was sent",
                                      sandbox, msg.from_number, self.next_reply_id))
            if decision.attribute:
                self.attributes.append((sandbox, msg.from_number, decision.attribute, msg.received_at,
                                        msg.received_at))
            if decision.review:
                self.reviews.append((row_id, cred.id, cred.name, sandbox, msg.from_number, msg.text,
                                     decision.keyword, msg.received_at, self.now))
            if decision.reply_text:
                reply_id = self.next_reply_id
                self.next_reply_id += 1
                self.replies.append(_reply_row(reply_id, cred, msg, decision, row_id, self.now))
        self.per_action[decision.action] = self.per_action.get(decision.action, 0) + 1
        self.messages.append((
            row_id, msg.message_id, msg.received_at, self.now, cred.id if cred else None, cred.name if cred else "",
            sandbox, msg.from_number, msg.to_number, msg.text, decision.normalized, decision.action,
            decision.keyword, decision.rule, decision.consent_before, decision.consent_after, msg.source, reply_id,
        ))
        return StoredOutcome(msg.message_id, row_id, decision.action, reply_id)

    def _expire(self, key: tuple[str, str], days: int, pending_since: str, expires_at: str) -> tuple[str, str]:
        """A pending double opt-in not confirmed within `days`: back to the consent before it, in
        the ledger as `expired` at the moment it expired (its receivedAt: later keywords count from it)."""
        sandbox, number = key
        prior = consent_before_pending(self.conn, sandbox, number, self.consent_changes)
        self.consent_changes.append((sandbox, number, Consent.PENDING, prior, None,
                                     f"double opt-in pending since {pending_since} not confirmed within {days} "
                                     f"days: expired", expires_at, "expired"))
        return prior, expires_at

    def write(self) -> None:
        conn = self.conn
        if self.messages:
            conn.executemany(
                "INSERT INTO messages (id, message_id, received_at, stored_at, credential_id, credential, sandbox, "
                "from_number, to_number, text, normalized, action, keyword, rule, consent_before, consent_after, "
                "source, reply_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.messages)
        if self.replies:
            # Our own messageId goes to Infobip with the send, so a retried send is recognisable there.
            conn.executemany(
                "INSERT INTO outbox (id, message_row_id, credential_id, our_message_id, sender, to_number, text, "
                "validity_period_hours, callback_data, principal_entity_id, content_template_id, status, "
                "created_at, updated_at, kind, sandbox, credential_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)", self.replies)
        if self.consent_changes:
            # The current consent and the ledger entry that explains it, in message order: the
            # last change of a number in the batch is the one that stays.
            final: dict[tuple[str, str], tuple[str, str]] = {}
            for sandbox, number, _, new, _, _, received_at, effect in self.consent_changes:
                if effect != "overruled":
                    final[(sandbox, number)] = (str(new), received_at)
            conn.executemany(
                "INSERT INTO consent (sandbox, number, consent, changed_at, received_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (sandbox, number) DO UPDATE SET consent = excluded.consent, "
                "changed_at = excluded.changed_at, received_at = excluded.received_at",
                [(sandbox, number, new, self.now, received_at)
                 for (sandbox, number), (new, received_at) in final.items() if new])
            # An expiry back to "never expressed" leaves no consent row (the table holds y, n, p).
            conn.executemany("DELETE FROM consent WHERE sandbox = ? AND number = ?",
                             [key for key, (new, _) in final.items() if not new])
            conn.executemany(
                "INSERT INTO consent_ledger (at, sandbox, number, old, new, message_row_id, reason, received_at, "
                "effect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.now, sandbox, number, str(old), str(new), row_id, rule, received_at, effect)
                 for sandbox, number, old, new, row_id, rule, received_at, effect in self.consent_changes])
        if self.opt_outs:
            cancel_for_opt_outs(conn, self.opt_outs)
        if self.reviews:
            conn.executemany(
                "INSERT INTO review_queue (message_row_id, credential_id, credential, sandbox, number, text, keyword, "
                "received_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.reviews)
        if self.attributes:
            conn.executemany(
                "INSERT INTO profile_attributes (sandbox, number, name, first_at, last_at, count) "
                "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (sandbox, number, name) "
                "DO UPDATE SET first_at = MIN(first_at, excluded.first_at), "
                "last_at = MAX(last_at, excluded.last_at), count = count + 1", self.attributes)
        if self.per_action:
            minute = self.now[:16]  # 2026-11-27T10:15: the whole batch is stored in this minute
            conn.executemany(
                "INSERT INTO traffic (minute, action, count) VALUES (?, ?, ?) "
                "ON CONFLICT (minute, action) DO UPDATE SET count = count + excluded.count",
                [(minute, str(action), count) for action, count in self.per_action.items()])
        if self.profiles:
            conn.executemany(
                "INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sandbox, number) DO UPDATE SET "
                "first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen)",
                [(sandbox, number, first, last) for (sandbox, number), (first, last) in self.profiles.items()])


_CHUNK = 500  # stays under SQLite's bound-parameter limit


def _existing_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(r[0] for r in conn.execute(f"SELECT message_id FROM messages WHERE message_id IN ({marks})",
                                                chunk))
    return found


def _consents_of(conn: sqlite3.Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(sandbox, number) -> (consent, receivedAt of the message that set it), for `keys`.

    Looked up by the whole primary key (sandbox, number): by number alone SQLite cannot use the
    key and reads the whole table, every subscriber who ever answered, for every webhook.
    """
    by_sandbox: dict[str, list[str]] = {}
    for sandbox, number in sorted(keys):
        by_sandbox.setdefault(sandbox, []).append(number)
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for sandbox, numbers in by_sandbox.items():
        for i in range(0, len(numbers), _CHUNK):
            chunk = numbers[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for number, consent, received_at in conn.execute(
                    f"SELECT number, consent, received_at FROM consent WHERE sandbox = ? AND number IN ({marks})",
                    [sandbox, *chunk]):
                found[(sandbox, number)] = (consent, received_at)
    return found


def consent_before_pending(conn: sqlite3.Connection, sandbox: str, number: str,
                            batch_changes: list[tuple[str, str, str, str, int, str, str, str]]) -> str:
    """The consent a pending number had before its opt-in made it pending ('' or n)."""
    for s, n, old, new, _, _, _, effect in reversed(batch_changes):
        if (s, n) == (sandbox, number) and effect == "changed" and new == Consent.PENDING:
            return str(old)
    row = conn.execute(
        "SELECT old FROM consent_ledger WHERE sandbox = ? AND number = ? AND new = 'p' AND effect = 'changed' "
        "ORDER BY id DESC LIMIT 1", (sandbox, number)).fetchone()
    return row[0] if row and row[0] in (Consent.NONE, Consent.NO) else ""


def _reply_row(reply_id: int, cred: StoredCredential, msg: InboundMessage, decision: Decision, row_id: int,
               now: str) -> tuple[object, ...]:
    return (reply_id, row_id, cred.id, f"smsdesk-{uuid.uuid4().hex}", cred.reply_sender, msg.from_number,
            decision.reply_text, cred.validity_period_hours, cred.callback_data, cred.principal_entity_id,
            cred.content_template_id, now, now, str(decision.action), cred.sandbox, cred.name)


__all__ = ["Action", "InboundMessage", "RouteTable", "StoredOutcome", "inbound_rows", "store_inbound",
           "store_messages"]
