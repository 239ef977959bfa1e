"""`smsdesk consent reconcile`'s storage: the last reconcile of each credential (what differed,
what was brought together, or why it could not run; one row per credential, the TUI's verify
screen shows it), the consent it compares, the opt-out a block found at Infobip becomes, and the
audit row of `smsdesk creds connect`."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from smsdesk.domain.consent_decider import Cause, ConsentOutcome, OperatorOptOut, decide
from smsdesk.store.consent_store import ConsentWrite, load_state, write_consent
from smsdesk.store.outbox import cancel_for_opt_outs


@dataclass(frozen=True, slots=True)
class ReconcileRecord:
    credential_id: int
    at: str
    applied: bool
    blocked_there: int  # blocked at Infobip, not opted out here
    opted_out_here: int  # opted out here, not blocked at Infobip
    opted_in_after: int  # blocked there, opted in here after the block
    brought_here: int  # ledger entries written (cause infobip-blocklist)
    pushed: int  # blocks and unblocks sent to Infobip
    error: str = ""

    def line(self) -> str:
        """One line for the operator."""
        if self.error:
            return f"last reconcile {self.at[:16]}: {self.error}"
        differences = self.blocked_there + self.opted_out_here + self.opted_in_after
        if not differences:
            return f"last reconcile {self.at[:16]}: the Blocklist and consent agree"
        what = (f"{self.blocked_there} blocked there only, {self.opted_out_here} opted out here only, "
                f"{self.opted_in_after} opted in here after a block")
        done = (f"; applied: {self.brought_here} opted out here, {self.pushed} pushed" if self.applied
                else "; not applied")
        return f"last reconcile {self.at[:16]}: {what}{done}"


def save_reconcile(conn: sqlite3.Connection, record: ReconcileRecord) -> None:
    conn.execute(
        "INSERT INTO blocklist_reconcile (credential_id, at, applied, blocked_there, opted_out_here, opted_in_after, "
        "brought_here, pushed, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (credential_id) DO UPDATE SET "
        "at = excluded.at, applied = excluded.applied, blocked_there = excluded.blocked_there, "
        "opted_out_here = excluded.opted_out_here, opted_in_after = excluded.opted_in_after, "
        "brought_here = excluded.brought_here, pushed = excluded.pushed, error = excluded.error",
        (record.credential_id, record.at, int(record.applied), record.blocked_there, record.opted_out_here,
         record.opted_in_after, record.brought_here, record.pushed, record.error[:500]))


def last_reconcile(conn: sqlite3.Connection, credential_id: int) -> ReconcileRecord | None:
    row = conn.execute(
        "SELECT credential_id, at, applied, blocked_there, opted_out_here, opted_in_after, brought_here, pushed, "
        "error FROM blocklist_reconcile WHERE credential_id = ?", (credential_id,)).fetchone()
    if row is None:
        return None
    return ReconcileRecord(row[0], row[1], bool(row[2]), *row[3:])


def consent_of_sandbox(conn: sqlite3.Connection, sandbox: str) -> dict[str, tuple[str, str]]:
    """Every number's consent in `sandbox`: number -> (value, since)."""
    return {number: (value, since) for number, value, since in conn.execute(
        "SELECT number, consent, received_at FROM consent WHERE sandbox = ?", (sandbox,))}


def record_blocklist_opt_out(conn: sqlite3.Connection, sandbox: str, number: str, reason: str, *, by: str,
                             now: str, credential_id: int) -> ConsentOutcome:
    """A block found on Infobip's Blocklist, brought here (inside a write transaction): an opt-out
    with the cause infobip-blocklist, decided as an operator's (always applied, at `now`), queued
    replies cancelled. The block it would push is there already: marked done, not sent."""
    outcome = decide(load_state(conn, sandbox, number), OperatorOptOut(now, Cause.INFOBIP_BLOCKLIST), now)
    write_consent(conn, [ConsentWrite(sandbox, number, outcome, None, reason, by)], now)
    boundary = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM outbox").fetchone()[0]
    cancel_for_opt_outs(conn, [(f"the number is on Infobip's Blocklist: {reason}"[:500], sandbox, number, boundary)])
    conn.execute("UPDATE blocklist_queue SET status = 'done', last_error = 'on the Blocklist already (reconcile)', "
                 "updated_at = ? WHERE credential_id = ? AND number = ? AND action = 'block' AND status = 'queued'",
                 (now, credential_id, number))
    return outcome


def audit_inbound_connect(conn: sqlite3.Connection, credential_id: int, name: str, *, by: str, at: str) -> None:
    """`smsdesk creds connect`: the number's inbound forwarding set at Infobip, in the audit table
    like every credential change (the field's name only, never the URL: it may carry the password)."""
    conn.execute("INSERT INTO audit (at, os_user, action, credential_id, credential_name, fields) "
                 "VALUES (?, ?, 'connect-inbound', ?, ?, ?)", (at, by, credential_id, name, '["inbound_forwarding"]'))
