"""Storing inbound messages: the decision, the consent change, the attributes and the queued
reply of one message commit together, and a messageId seen before changes nothing."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from smsdesk.domain.consent_decider import (
    NO_CONSENT,
    ConsentOutcome,
    ConsentState,
    Effect,
    ExpiryCheck,
    KeywordEvent,
    Wish,
    in_force,
    trusted_time,
)
from smsdesk.domain.consent_decider import decide as decide_consent
from smsdesk.domain.credential import StoredCredential
from smsdesk.domain.rules import Action, Consent, Decision, KeywordIndex, decide, keyword_index, overruled
from smsdesk.store.consent_store import ConsentWrite, load_states, write_consent
from smsdesk.store.credentials import list_credentials
from smsdesk.store.db import utcnow
from smsdesk.store.outbox import cancel_for_opt_outs
from smsdesk.store.unreadable import insert_unreadable


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
            for cred in list_credentials(conn) if cred.inbound_number
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


def store_inbound(conn: sqlite3.Connection, messages: Sequence[Sequence[str]],
                  unreadable: Sequence[Sequence[str]] = ()) -> list[OutcomeRow]:
    """`store_messages` for webhooks and pulls, run by the writer (a job importable by name).

    Takes InboundMessage fields and returns StoredOutcome fields as plain tuples: the writer runs
    in another process, and plain tuples pickle much cheaper than objects, which on
    the batched path is the difference between the writer waiting for its input or not.

    `unreadable`: rows for `unreadable_inbound` (store/unreadable.py), the results of the same
    body that could not be read, written in the same transaction as their readable neighbours.
    """
    if unreadable:
        insert_unreadable(conn, unreadable)
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
                   messages: Sequence[InboundMessage], arrived_at: str | None = None) -> list[StoredOutcome]:
    """Apply the rules to each message and write the results. Call inside a write transaction.

    The batch is decided first (pure), then written with one executemany per table. Row ids are
    assigned here, which is safe because the caller holds SQLite's write lock (BEGIN IMMEDIATE):
    that is what lets a message row name its reply and a ledger entry name its message without a
    round trip per row. Consent states inside one batch are carried forward in `states`.

    Consent is the decider's (domain/consent_decider.py): a message states a wish at its
    receivedAt (or at its arrival, when receivedAt is too far ahead of this clock), and the
    decider folds it into the number's wishes. An opt-out cancels, in this transaction, what was
    queued for the number before it (docs/architecture.md, "Consent by time"). `arrived_at`:
    the receiver's clock (now, unless a test or a replay says when the batch arrived).
    """
    routes.refresh(conn)
    seen = _existing_ids(conn, [m.message_id for m in messages])
    states = load_states(conn, {(cred.sandbox, m.from_number) for m in messages
                                if (cred := routes.lookup(m.to_number)[0]) is not None})
    batch = _Batch(conn, arrived_at or utcnow())
    outcomes = []
    for message in messages:
        if message.message_id in seen:
            outcomes.append(StoredOutcome(message.message_id, None, "duplicate", None))
            continue
        seen.add(message.message_id)
        outcomes.append(batch.add(routes, message, states))
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
        self.consent_writes: list[ConsentWrite] = []
        self.opt_outs: list[tuple[str, str, str, int]] = []  # (reason, sandbox, number, reply id boundary)
        self.attributes: list[tuple[str, str, str, str, str]] = []
        self.profiles: dict[tuple[str, str], tuple[str, str]] = {}
        self.per_action: dict[str, int] = {}  # this batch's messages by action, for the traffic counts
        self.reviews: list[tuple[object, ...]] = []  # near misses for the operator's review queue

    def add(self, routes: RouteTable, msg: InboundMessage,
            states: dict[tuple[str, str], ConsentState]) -> StoredOutcome:
        cred, index = routes.lookup(msg.to_number)
        decided_at = trusted_time(msg.received_at, self.now)
        row_id = self.next_message_id
        self.next_message_id += 1
        reply_id = None
        if cred is None or index is None:
            decision = decide(msg.text, None, "")
        else:
            key = (cred.sandbox, msg.from_number)
            decision = self._decide(cred, index, msg, decided_at, row_id, key, states)
            first, last = self.profiles.get(key, (msg.received_at, msg.received_at))
            self.profiles[key] = (min(first, msg.received_at), max(last, msg.received_at))
            if decision.attribute:
                self.attributes.append((cred.sandbox, msg.from_number, decision.attribute, msg.received_at,
                                        msg.received_at))
            if decision.review:
                self.reviews.append((row_id, cred.id, cred.name, cred.sandbox, msg.from_number, msg.text,
                                     decision.keyword, msg.received_at, self.now))
            if decision.reply_text:
                reply_id = self.next_reply_id
                self.next_reply_id += 1
                self.replies.append(_reply_row(reply_id, cred, msg, decision, row_id, self.now))
        self.per_action[decision.action] = self.per_action.get(decision.action, 0) + 1
        self.messages.append((
            row_id, msg.message_id, msg.received_at, self.now, cred.id if cred else None, cred.name if cred else "",
            cred.sandbox if cred else "", msg.from_number, msg.to_number, msg.text, decision.normalized,
            decision.action, decision.keyword, decision.rule, decision.consent_before, decision.consent_after,
            msg.source, reply_id, "" if decided_at == msg.received_at else decided_at,
        ))
        return StoredOutcome(msg.message_id, row_id, decision.action, reply_id)

    def _decide(self, cred: StoredCredential, index: KeywordIndex, msg: InboundMessage, decided_at: str,
                row_id: int, key: tuple[str, str], states: dict[tuple[str, str], ConsentState]) -> Decision:
        """The keyword rules on the consent in force now, and the consent decider on the wish."""
        state = states.get(key, NO_CONSENT)
        current = in_force(state, self.now)
        decision = decide(msg.text, cred, current, index)
        wish = wish_of(decision, cred, index)
        if wish is None:
            if state.value != current:  # a pending opt-in expired: recorded on its next message
                self._record(key, decide_consent(state, ExpiryCheck(self.now), self.now), None, "", states)
            return decision
        outcome = decide_consent(state, KeywordEvent(wish, decided_at, cred.double_opt_in_expiry_days), self.now)
        decision = settle(decision, outcome, wish, cred, index, msg.text)
        self._record(key, outcome, row_id, decision.rule, states)
        if outcome.opts_out:
            self.opt_outs.append((f"the number opted out (message #{row_id}) before the reply was sent",
                                  key[0], key[1], self.next_reply_id))
        return decision

    def _record(self, key: tuple[str, str], outcome: ConsentOutcome, row_id: int | None, reason: str,
                states: dict[tuple[str, str], ConsentState]) -> None:
        states[key] = outcome.state
        if outcome.entries:
            self.consent_writes.append(ConsentWrite(key[0], key[1], outcome, row_id, reason))

    def write(self) -> None:
        conn = self.conn
        if self.messages:
            conn.executemany(
                "INSERT INTO messages (id, message_id, received_at, stored_at, credential_id, credential, sandbox, "
                "from_number, to_number, text, normalized, action, keyword, rule, consent_before, consent_after, "
                "source, reply_id, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.messages)
        if self.replies:
            # Our own messageId goes to Infobip with the send, so a retried send is recognisable there.
            conn.executemany(
                "INSERT INTO outbox (id, message_row_id, credential_id, our_message_id, sender, to_number, text, "
                "validity_period_hours, callback_data, principal_entity_id, content_template_id, status, "
                "created_at, updated_at, kind, sandbox, credential_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)", self.replies)
        write_consent(conn, self.consent_writes, self.now)
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


def wish_of(decision: Decision, cred: StoredCredential, index: KeywordIndex) -> Wish | None:
    """The consent wish a message states, or None for the texts that state none."""
    if decision.action is Action.OPT_OUT:
        return Wish.OPT_OUT
    if decision.action is Action.OPT_IN:
        return Wish.PENDING if cred.double_opt_in_keywords else Wish.OPT_IN
    if decision.action is Action.DOUBLE_OPT_IN:
        return Wish.CONFIRM
    matched = index.get(decision.normalized)
    if decision.action is Action.DEFAULT and matched is not None and matched[0] is Action.DOUBLE_OPT_IN:
        return Wish.CONFIRM  # not pending now; a late opt-in or the window may still make it count
    return None


def settle(decision: Decision, outcome: ConsentOutcome, wish: Wish, cred: StoredCredential, index: KeywordIndex,
           text: str) -> Decision:
    """The keyword rules' decision made to agree with what the consent decider did."""
    entry = outcome.last
    assert entry is not None  # a keyword event always has its own entry
    before, after = entry.old, outcome.state.value
    if wish is Wish.CONFIRM:
        if entry.effect == Effect.CHANGED:
            keyword = index.get(decision.normalized, (Action.DOUBLE_OPT_IN, decision.keyword))[1]
            return Decision(Action.DOUBLE_OPT_IN, decision.normalized, keyword, before, after,
                            cred.double_opt_in_message,
                            f"double opt-in keyword {keyword!r} while pending: consent confirmed")
        # Not confirming anything: answered as an unmatched text on the consent in force.
        unmatched = decide(text, cred, Consent.NONE if before == Consent.PENDING else before, index,
                           pending_expired=before == Consent.PENDING)
        return replace(unmatched, consent_before=before, consent_after=before)
    if entry.effect == Effect.OVERRULED:
        return overruled(decision, before)
    if wish is Wish.PENDING and after == Consent.YES and before != Consent.YES:
        return replace(decision, consent_before=before, consent_after=after, reply_text=cred.double_opt_in_message,
                       rule=f"opt-in keyword {decision.keyword!r}: confirmed by the double opt-in keyword the number "
                            "sent before this message arrived")
    return replace(decision, consent_before=before, consent_after=after)


def _reply_row(reply_id: int, cred: StoredCredential, msg: InboundMessage, decision: Decision, row_id: int,
               now: str) -> tuple[object, ...]:
    return (reply_id, row_id, cred.id, f"smsdesk-{uuid.uuid4().hex}", cred.reply_sender, msg.from_number,
            decision.reply_text, cred.validity_period_hours, cred.callback_data, cred.principal_entity_id,
            cred.content_template_id, now, now, str(decision.action), cred.sandbox, cred.name)


__all__ = ["Action", "InboundMessage", "RouteTable", "StoredOutcome", "inbound_rows", "store_inbound",
           "store_messages"]
