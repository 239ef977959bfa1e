"""An operator's consent decisions: an opt-out recorded by hand (a call, an email, the review
queue) and the dismissal of a near miss. Each is one event for the consent decider, at the
operator's time, written with the OS user in the ledger.

Revocation "by any reasonable means" (FCC, in force since 11 April 2025) must always be possible:
an operator's opt-out is always applied, whatever times the number's messages claimed, and it
cancels the replies queued for the number in the same transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from smsdesk.domain.consent_decider import ConsentOutcome, Dismissal, Effect, OperatorOptOut, decide
from smsdesk.domain.phone import consent_number, to_e164
from smsdesk.store.consent_store import ConsentWrite, load_state, write_consent
from smsdesk.store.db import transaction, utcnow
from smsdesk.store.outbox import cancel_for_opt_outs


def record_opt_out(conn: sqlite3.Connection, sandbox: str, number: str, reason: str, *, by: str, now: str,
                   message_row_id: int | None = None) -> ConsentOutcome:
    """Opt `number` out of `sandbox` at `now` (inside a write transaction); returns what changed."""
    outcome = decide(load_state(conn, sandbox, number), OperatorOptOut(now), now)
    write_consent(conn, [ConsentWrite(sandbox, number, outcome, message_row_id, reason, by)], now)
    boundary = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM outbox").fetchone()[0]
    cancel_for_opt_outs(conn, [(f"the number was opted out by {by} before the reply was sent: {reason}"[:500],
                                sandbox, number, boundary)])
    return outcome


def record_dismissal(conn: sqlite3.Connection, sandbox: str, number: str, reason: str, *, by: str, now: str,
                     message_row_id: int | None = None) -> ConsentOutcome:
    """A near miss judged no opt-out (inside a write transaction): recorded, consent unchanged."""
    outcome = decide(load_state(conn, sandbox, number), Dismissal(now), now)
    write_consent(conn, [ConsentWrite(sandbox, number, outcome, message_row_id, reason, by)], now)
    return outcome


@dataclass(frozen=True)
class OperatorDecision:
    """What an operator's opt-out did, for the CLI and the TUI to say."""

    sandbox: str
    number: str
    effect: str  # changed | reaffirmed
    before: str
    ledger_id: int
    cancelled: int  # queued replies cancelled with it

    @property
    def note(self) -> str:
        if self.effect == Effect.CHANGED:
            return (f"opted out (was {self.before or 'none'}); {self.cancelled} queued "
                    f"repl{'y' if self.cancelled == 1 else 'ies'} cancelled")
        return "already opted out: recorded as reaffirmed"


MAX_REASON = 500


def opt_out_number(db: sqlite_utils.Database, sandbox: str, number: str, reason: str, *,
                   by: str) -> OperatorDecision:
    """Record an opt-out operator `by` received by other means (a call, an email) for `number` in
    `sandbox`: always applied, at the operator's time, queued replies cancelled, in the ledger with
    `by` and `reason` (usecases/consent.py names the OS user). Raises ValueError with a user-facing
    reason for bad input."""
    reason = reason.strip()
    if not reason:
        raise ValueError("give the reason (how the opt-out reached you), e.g. --reason 'phone call'")
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise ValueError(f"the reason is one line of at most {MAX_REASON} printable characters")
    e164 = consent_number(to_e164(number))
    with transaction(db) as conn:
        if not _sandbox_known(conn, sandbox):
            raise ValueError(f"no credential, profile or consent uses sandbox {sandbox!r}")
        now = utcnow()
        queued_before = _queued(conn, sandbox, e164)
        outcome = record_opt_out(conn, sandbox, e164, f"operator {by}: {reason}", by=by, now=now)
        ledger_id = int(conn.execute("SELECT MAX(id) FROM consent_ledger").fetchone()[0])
        cancelled = queued_before - _queued(conn, sandbox, e164)
    entry = outcome.entries[-1]
    return OperatorDecision(sandbox, e164, str(entry.effect), str(entry.old), ledger_id, cancelled)


def _sandbox_known(conn: sqlite3.Connection, sandbox: str) -> bool:
    """A sandbox some credential, consent or profile uses (a typo must not create a new one)."""
    return any(conn.execute(f"SELECT 1 FROM {table} WHERE sandbox = ? LIMIT 1", (sandbox,)).fetchone()
               for table in ("credentials", "consent", "profiles"))


def _queued(conn: sqlite3.Connection, sandbox: str, number: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE to_number = ? AND sandbox = ? AND status = 'queued'",
                            (number, sandbox)).fetchone()[0])
