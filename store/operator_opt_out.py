"""An operator's consent decisions: an opt-out recorded by hand (a call, an email, the review
queue) and the dismissal of a near miss. Each is one event for the consent decider, at the
operator's time, written with the OS user in the ledger.

Revocation "by any reasonable means" (FCC, in force since 11 April 2025) must always be possible:
an operator's opt-out is always applied, whatever times the number's messages claimed, and it
cancels the replies queued for the number in the same transaction.
"""

from __future__ import annotations

import sqlite3

from smsdesk.store.consent_decider import ConsentOutcome, Dismissal, OperatorOptOut, decide
from smsdesk.store.consent_store import ConsentWrite, load_state, write_consent
from smsdesk.store.os_user import os_user
from smsdesk.store.outbox import cancel_for_opt_outs

__all__ = ["os_user", "record_dismissal", "record_opt_out"]



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
