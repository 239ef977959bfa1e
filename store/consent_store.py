"""Consent rows and ledger entries in SQLite: reading a number's consent state, and writing what
the decider (domain/consent_decider.py) made of an event. The only code that writes either table.

A consent row holds the value in force, when it took effect, its cause, the end of a pending
opt-in's window and the number's wishes as JSON. Rows written before the wishes were kept have
an empty history and are read as their one wish. Rows are never deleted: an expired double opt-in
is consent '' since the moment it expired.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from smsdesk.domain.consent_decider import (
    NO_CONSENT,
    Cause,
    Consent,
    ConsentOutcome,
    ConsentState,
    Effect,
    TimedWish,
    Wish,
    fold,
    state_of,
)
from smsdesk.domain.credential import DEFAULT_EXPIRY_DAYS  # a legacy pending row whose credential is gone
from smsdesk.store.blocklist_queue import enqueue_for_writes

_CHUNK = 500  # stays under SQLite's bound-parameter limit

Key = tuple[str, str]  # (sandbox, number)


@dataclass(frozen=True, slots=True)
class ConsentWrite:
    """One event's outcome for one number, with what the ledger says about its cause."""

    sandbox: str
    number: str
    outcome: ConsentOutcome
    message_row_id: int | None = None
    reason: str = ""
    operator: str = ""


def load_states(conn: sqlite3.Connection, keys: Iterable[Key]) -> dict[Key, ConsentState]:
    """The consent state of each (sandbox, number) that has a row; others have NO_CONSENT.

    Looked up by the whole primary key: by number alone SQLite would read every consent row.
    """
    by_sandbox: dict[str, list[str]] = {}
    for sandbox, number in sorted(set(keys)):
        by_sandbox.setdefault(sandbox, []).append(number)
    found: dict[Key, ConsentState] = {}
    for sandbox, numbers in by_sandbox.items():
        for i in range(0, len(numbers), _CHUNK):
            chunk = numbers[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for number, value, since, cause, ends, history in conn.execute(
                    "SELECT number, consent, received_at, cause, expires_at, history FROM consent "
                    f"WHERE sandbox = ? AND number IN ({marks})", [sandbox, *chunk]):
                found[(sandbox, number)] = _state(conn, sandbox, number, value, since, cause, ends, history)
    return found


def load_state(conn: sqlite3.Connection, sandbox: str, number: str) -> ConsentState:
    return load_states(conn, [(sandbox, number)]).get((sandbox, number), NO_CONSENT)


def pending_states(conn: sqlite3.Connection) -> dict[Key, ConsentState]:
    """Every pending number's state (the expiry sweep; the partial index holds only these)."""
    return {(sandbox, number): _state(conn, sandbox, number, value, since, cause, ends, history)
            for sandbox, number, value, since, cause, ends, history in conn.execute(
                "SELECT sandbox, number, consent, received_at, cause, expires_at, history FROM consent "
                "WHERE consent = 'p'").fetchall()}


def write_consent(conn: sqlite3.Connection, writes: Sequence[ConsentWrite], now: str) -> None:
    """Write every ledger entry of `writes` in order, and each number's final consent row.
    Call inside the write transaction that stores the event's cause."""
    if not writes:
        return
    conn.executemany(
        "INSERT INTO consent_ledger (at, sandbox, number, old, new, message_row_id, reason, received_at, effect, "
        "operator, wish, expiry_days, cause) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(now, w.sandbox, w.number, str(e.old), str(e.new),
          None if e.effect == Effect.EXPIRED else w.message_row_id,
          _expiry_reason(e.at) if e.effect == Effect.EXPIRED else w.reason, e.at, str(e.effect),
          w.operator if e.cause in (Cause.OPERATOR, Cause.DISMISSAL, Cause.INFOBIP_BLOCKLIST) else "", str(e.wish),
          e.days, str(e.cause))
         for w in writes for e in w.outcome.entries])
    final: dict[Key, ConsentState] = {}
    for w in writes:
        final[(w.sandbox, w.number)] = w.outcome.state
    # The Blocklist pushes these changes call for, committed with them (store/blocklist_queue.py).
    enqueue_for_writes(conn, writes, now)
    conn.executemany(
        "INSERT INTO consent (sandbox, number, consent, changed_at, received_at, cause, expires_at, history) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sandbox, number) DO UPDATE SET consent = excluded.consent, "
        "changed_at = excluded.changed_at, "
        "received_at = excluded.received_at, cause = excluded.cause, expires_at = excluded.expires_at, "
        "history = excluded.history",
        [(sandbox, number, str(state.value), now, state.since, state.cause, state.expires_at, _history_json(state))
         for (sandbox, number), state in final.items()])


def _expiry_reason(at: str) -> str:
    return f"double opt-in not confirmed in time: expired at {at}"


def _history_json(state: ConsentState) -> str:
    return json.dumps([[str(w.wish), w.at, w.days, int(w.by_operator)] for w in state.history],
                      separators=(",", ":"))


def _state(conn: sqlite3.Connection, sandbox: str, number: str, value: str, since: str, cause: str, ends: str,
           history: str) -> ConsentState:
    if history:
        try:
            wishes = tuple(TimedWish(Wish(w), str(at), int(days), bool(by))
                           for w, at, days, by in json.loads(history))
        except (ValueError, TypeError):  # edited by hand: read as its value, as a legacy row
            wishes = ()
        if wishes:
            # The stored value is what was decided; it stays in force until an event moves it
            # (a pending opt-in past its window is expired by the next event or the sweep).
            return ConsentState(Consent(value), since, cause, ends, wishes)
    return _legacy_state(conn, sandbox, number, Consent(value), since)


def _legacy_state(conn: sqlite3.Connection, sandbox: str, number: str, value: Consent, since: str) -> ConsentState:
    """A row from before 0.4: its one wish; a pending one with the days of the credential whose
    opt-in made it pending, and the consent before it (the ledger says)."""
    if value != Consent.PENDING:
        return state_of(value, since)
    row = conn.execute(
        "SELECT l.old, (SELECT k.double_opt_in_expiry_days FROM messages m JOIN credentials k "
        "ON k.id = m.credential_id WHERE m.id = l.message_row_id) FROM consent_ledger l "
        "WHERE l.sandbox = ? AND l.number = ? AND l.new = 'p' AND l.effect = 'changed' ORDER BY l.id DESC LIMIT 1",
        (sandbox, number)).fetchone()
    days = DEFAULT_EXPIRY_DAYS if row is None or row[1] is None else int(row[1])
    wishes: tuple[TimedWish, ...] = (TimedWish(Wish.PENDING, since, days),)
    if row is not None and row[0] == Consent.NO:
        wishes = (TimedWish(Wish.OPT_OUT, ""), *wishes)
    return fold(wishes, since)
